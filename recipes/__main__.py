"""`python -m recipes` is `python -m recipes.run`."""

from recipes.run import main

raise SystemExit(main())
