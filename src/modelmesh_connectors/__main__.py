"""``python -m modelmesh_connectors`` runs the CLI."""

from .cli import main

raise SystemExit(main())
