"""The masking workflow of the demo: what a first Governor config for the demo database looks like.

It masks everything in the demo database that identifies a person and keeps the rest, so the
masked copy still joins and still sums up: orders, items, products and amounts pass through.
Table names carry no schema, so the same config runs on SQLite and on PostgreSQL.

Names, emails and phones of a row come from one ``person_generator``, so a masked customer's
email matches their masked name; the email columns are unique, so the generator ends each local
part with the row's hash and the target's unique constraint holds.
"""

from __future__ import annotations

DEMO_MASKING_CONFIG = """\
# Governor demo: mask every column that identifies a person, keep everything else as it is.
default_config:
  mode: KEEP
schema_creation_mode: CREATE_IF_NOT_EXISTS
table_truncation_mode: TRUNCATE
safety_mode: RELAXED
global_seed: 20250630
tables:
  - table_name_with_schema: customers
    mode: MASKING
    transformations:
      - columns: [first_name, last_name, email, phone]
        params:
          type: person_generator
          column_templates: ["${first_name}", "${last_name}", "${email}", "${phone_national}"]
      - columns: [birth_date]
        params:
          type: noising
          max_shift_days: 180
  - table_name_with_schema: addresses
    mode: MASKING
    transformations:
      - columns: [street, city, state, postcode]
        params:
          type: address_generator
          column_templates: ["${street_address}", "${city}", "${state_abbr}", "${postcode}"]
  - table_name_with_schema: payments
    mode: MASKING
    transformations:
      - columns: [card_last4]
        params:
          type: format_preserving_hashing
  - table_name_with_schema: employees
    mode: MASKING
    transformations:
      - columns: [first_name, last_name, email, phone]
        params:
          type: person_generator
          column_templates: ["${first_name}", "${last_name}", "${email}", "${phone_national}"]
      - columns: [salary]
        params:
          type: noising
          noise_type: RELATIVE
          scale: 0.05
"""
