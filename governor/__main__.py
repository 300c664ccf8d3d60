"""``python -m governor``: the same CLI as the ``governor`` command, for subprocesses of our own."""

from governor.cli.main import app

app()
