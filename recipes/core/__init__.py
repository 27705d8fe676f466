"""The machinery behind the recipes: nothing here is a lesson.

- `registry`: register a recipe by decorator, list, look up by name;
- `options`: the command-line options every recipe shares, checked in one place;
- `keywords`: `recipes.cook`'s keyword arguments as the command line they stand for;
- `workflow`: `Run`, what a recipe's Keras code calls (data, scope, fit, finish);
- `report`: the `Result` a recipe returns, as tables and JSON;
- `plots`: the figures the lessons draw;
- `errors`: `UsageError` (exit 2) and `RunError` (exit 1).

`registry`, `options`, `keywords`, `report` and `errors` use the standard library only, so
`--list` and `--help` never import TensorFlow.
"""
