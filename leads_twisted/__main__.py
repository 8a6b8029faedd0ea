"""``python -m leads_twisted``: the same as the ``leads-comm`` command."""

from leads_twisted.cli.main import main

raise SystemExit(main())
