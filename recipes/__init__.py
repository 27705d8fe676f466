"""Recipes: the scenarios of the deep-learning notes as runnable, exportable Keras runs.

Run one with `python -m recipes.run NAME`; list them with `python -m recipes.run --list`.
Importing this package imports nothing heavy.
"""
