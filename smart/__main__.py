from smart.cli import main

raise SystemExit(main())
