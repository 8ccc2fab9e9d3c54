"""``python -m rotalumis.cli``."""

from .main import main

main()
