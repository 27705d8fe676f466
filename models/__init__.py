"""The library behind the recipes: data, Keras Sequential builders, the training loop,
exports, the zoo loader for exported models, the server, and the decision-tree helper.

Each submodule is imported on its own (`from models import zoo`); importing this
package imports nothing heavy.
"""
