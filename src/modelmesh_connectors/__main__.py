"""``python -m modelmesh_connectors`` runs the CLI."""

from modelmesh_connectors.cli import main

raise SystemExit(main())
