"""The demo: an e-commerce source database full of realistic fake people, and its masking config."""

from governor.demo.config import DEMO_MASKING_CONFIG
from governor.demo.database import DEMO_TABLES, build_demo_database, generate_demo_rows

__all__ = ["DEMO_MASKING_CONFIG", "DEMO_TABLES", "build_demo_database", "generate_demo_rows"]
