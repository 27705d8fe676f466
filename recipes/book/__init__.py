"""The lesson book: every recipe as a web page with its lesson, its Keras code, its numbers and its figures.

`python -m recipes.book [--output DIR] [--only NAME,...] [--epochs-scale F]`
runs the recipes in this process (or reuses the runs already in `DIR` whose
recipe and options are unchanged) and writes a static site that needs no
server, no network and no JavaScript:

- `DIR/index.html`: the catalogue, in the notes' order: each lesson with its
  data, its headline number and a thumbnail of its figure;
- `DIR/lessons/NAME.html`: one page per recipe: the lesson (the module's
  docstring), the figures with what to look at, the run's numbers as tables,
  the recipe's source, the options and timing, links to the ERRATA entries it
  cites and to the previous and next lessons;
- `DIR/errata.html`: ERRATA.md, each entry with the lessons that cite it;
- `DIR/runs/NAME/`: each run's report, figures and what the page needs to be
  rebuilt without running again (see `recipes.book.runs`).

Modules: `runs` (run or reuse), `lesson` (docstring and source to HTML),
`numbers` (report values to tables), `errata` (ERRATA.md), `site` (the pages),
`__main__` (the command line).
"""
