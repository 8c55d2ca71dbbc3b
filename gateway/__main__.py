"""`python -m gateway` runs the `gateway` command."""

from gateway.cli.main import main

raise SystemExit(main())
