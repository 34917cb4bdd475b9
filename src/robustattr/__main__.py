from robustattr.cli import main

raise SystemExit(main())
