"""The five update rules of the notes in NumPy, as Keras 3 computes them.

Notes: "Optimizers" (W := W − α·∇, Momentum, AdaGrad, RMSProp, Adam);
ERRATA #3, #4, #15.

Each rule is one function with the same shape,

    rule(weights, gradient, state=None, **hyperparameters) -> (new_weights, new_state)

where `state=None` means "the first step" (the rule makes its own initial
state) and the returned state goes into the next call. The defaults are the
defaults of the Keras optimizer each rule mirrors (`momentum` is this package's
`SGD(momentum=0.9)`). Every operation is written the way Keras writes it, in
the order it writes it and in the weights' own dtype, so in float32 (what
training uses) the rules reproduce `keras.optimizers.*` bit for bit; the tests
and the `optimizers` recipe check it. (With float64 weights Keras still rounds
its hyperparameters through float32, so the two then differ by about 1e-6 of a
step.) Each docstring shows the notes' formula, Keras's, and the difference.

`RULES` maps the package's optimizer names to the rules; `trajectory` applies
a rule to a sequence of gradients.

Example:

>>> import numpy as np
>>> from models.lessons import update_rules
>>> w, state = update_rules.momentum(np.array([1.0]), np.array([0.5]), learning_rate=0.1)
>>> w, state
(array([0.95]), array([-0.05]))
>>> w, state = update_rules.momentum(w, np.array([0.5]), state, learning_rate=0.1)
>>> w.round(6), state.round(6)
(array([0.855]), array([-0.095]))
"""

from __future__ import annotations

import numpy as np


def _arrays(weights, gradient):
    weights = np.asarray(weights)
    if not np.issubdtype(weights.dtype, np.floating):
        weights = weights.astype(np.float64)
    gradient = np.asarray(gradient, dtype=weights.dtype)
    if gradient.shape != weights.shape:
        raise ValueError(
            "`gradient` must have the shape of `weights`. "
            f"Received: weights.shape={weights.shape}, gradient.shape={gradient.shape}"
        )
    return weights, gradient


def sgd(weights, gradient, state=None, *, learning_rate=0.01):
    """Plain gradient descent: one step against the gradient.

    The notes: W_new = W_old − η·∂C/∂w (also written W := W − α·∇).
    Keras `SGD(momentum=0)`: `w = w - learning_rate * g`.
    No difference: the notes have this one right. It keeps no state.

    Args:
        weights: the current weights (any shape).
        gradient: ∂C/∂w at `weights`, same shape.
        state: unused; SGD keeps none. Defaults to `None`.
        learning_rate: η. Defaults to `0.01` (Keras's default).

    Returns:
        `(new_weights, None)`.
    """
    weights, gradient = _arrays(weights, gradient)
    return weights - gradient * learning_rate, None


def momentum(weights, gradient, state=None, *, learning_rate=0.01, momentum=0.9):
    """Gradient descent with momentum: a running "velocity" of past steps.

    The notes: v_t = η·v_{t−1} − α·∇J, then W := W − v_t.
    Keras `SGD(momentum=m)`: `v = m * v - learning_rate * g; w = w + v`, with v = 0 at first.
    Difference (ERRATA #3): the velocity already points downhill (it holds
    −α·∇J), so it must be added: W := W + v_t. The notes' W − v_t steps uphill
    and climbs the loss. (The notes' η is Keras's `momentum`, their α the
    learning rate.)

    Args:
        weights: the current weights.
        gradient: ∂C/∂w at `weights`.
        state: the velocity v_{t−1}, or `None` for zeros. Defaults to `None`.
        learning_rate: α. Defaults to `0.01` (Keras's `SGD` default).
        momentum: the notes' η, in [0, 1). Defaults to `0.9` (this package's `momentum`).

    Returns:
        `(new_weights, velocity)`.
    """
    weights, gradient = _arrays(weights, gradient)
    velocity = np.zeros_like(weights) if state is None else state
    velocity = velocity * momentum - gradient * learning_rate
    return weights + velocity, velocity


def adagrad(weights, gradient, state=None, *, learning_rate=0.001,
            initial_accumulator_value=0.1, epsilon=1e-7):
    """AdaGrad: each weight's step shrinks with the sum of its squared gradients.

    The notes: G(0) = 0, G(t) = G(t−1) + (∂L/∂w)², W := W − η / (√G + ε) · ∇J.
    Keras `Adagrad`: `G` starts at `initial_accumulator_value` (0.1),
    `G = G + g²; w = w - learning_rate * g / sqrt(G + epsilon)`.
    Differences (ERRATA #4): the accumulator starts at 0.1, not 0, so the
    first step is η·g / √(0.1 + g²) rather than the notes' η·g / (|g| + ε) ≈ η·sign(g);
    and ε sits inside the square root, √(G + ε), not outside it.

    Args:
        weights: the current weights.
        gradient: ∂C/∂w at `weights`.
        state: the accumulator G(t−1), or `None` to start at
            `initial_accumulator_value`. Defaults to `None`.
        learning_rate: η. Defaults to `0.001` (Keras's default).
        initial_accumulator_value: G(0). Defaults to `0.1` (Keras's; the notes use 0).
        epsilon: ε, inside the square root. Defaults to `1e-7`.

    Returns:
        `(new_weights, accumulator)`.
    """
    weights, gradient = _arrays(weights, gradient)
    if state is None:
        state = np.full_like(weights, initial_accumulator_value)
    accumulator = state + np.square(gradient)
    return weights - (learning_rate * gradient) / np.sqrt(accumulator + epsilon), accumulator


def rmsprop(weights, gradient, state=None, *, learning_rate=0.001, rho=0.9, epsilon=1e-7):
    """RMSProp: AdaGrad with a decaying average of squared gradients instead of a sum.

    The notes give it in words only ("rather than using the sum of previous
    gradients, decay older gradients more than more recent ones"); the usual
    formula is E[g²]_t = ρ·E[g²]_{t−1} + (1 − ρ)·g², W := W − η / (√E[g²]_t + ε) · g.
    Keras `RMSprop` (no momentum, not centred):
    `v = rho * v + (1 - rho) * g²; w = w - learning_rate * g / sqrt(v + epsilon)`,
    with v = 0 at first.
    Differences: ε sits inside the square root, and there is no bias
    correction: v starts at 0, so the first steps are larger than η·sign(g)
    (the first is η·g / √(0.1·g²) ≈ 3.16·η·sign(g) with ρ = 0.9).

    Args:
        weights: the current weights.
        gradient: ∂C/∂w at `weights`.
        state: the average of squared gradients, or `None` for zeros. Defaults to `None`.
        learning_rate: η. Defaults to `0.001` (Keras's default).
        rho: ρ, the decay of old squared gradients. Defaults to `0.9`.
        epsilon: ε, inside the square root. Defaults to `1e-7`.

    Returns:
        `(new_weights, average_of_squared_gradients)`.
    """
    weights, gradient = _arrays(weights, gradient)
    velocity = np.zeros_like(weights) if state is None else state
    velocity = rho * velocity + (1 - rho) * np.square(gradient)
    return weights - (learning_rate * gradient) / np.sqrt(velocity + epsilon), velocity


def adam(weights, gradient, state=None, *, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
         epsilon=1e-7):
    """Adam: momentum (first moment) and RMSProp (second moment) together, bias-corrected.

    The notes give it in words only ("utilize both momentum and RMSProp
    concepts"); Kingma & Ba's Algorithm 1 is
    m = β₁·m + (1 − β₁)·g, v = β₂·v + (1 − β₂)·g², m̂ = m / (1 − β₁ᵗ),
    v̂ = v / (1 − β₂ᵗ), W := W − η·m̂ / (√v̂ + ε).
    Keras `Adam` (not AMSGrad) folds the bias correction into the step size:
    `alpha = learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t)`,
    `m += (g - m) * (1 - beta_1); v += (g² - v) * (1 - beta_2)`,
    `w = w - alpha * m / (sqrt(v) + epsilon)`.
    Differences: the same moments, but ε is added to the uncorrected √v, so
    Keras's ε is the paper's ε times √(1 − β₂ᵗ) ("epsilon hat"). With the same
    ε the two steps differ by a relative ε / √v or less, which matters only
    for gradients near ε in size. Memory (ERRATA #15): the notes say
    Adam "requires less memory"; it keeps two numbers per weight (m and v),
    against none for SGD and one for Momentum, AdaGrad or RMSProp.

    Args:
        weights: the current weights.
        gradient: ∂C/∂w at `weights`.
        state: `(m, v, t)` after step t, or `None` for zeros at t = 0. Defaults to `None`.
        learning_rate: η. Defaults to `0.001` (Keras's default).
        beta_1: β₁, the decay of the first moment. Defaults to `0.9`.
        beta_2: β₂, the decay of the second moment. Defaults to `0.999`.
        epsilon: ε, added to √v. Defaults to `1e-7`.

    Returns:
        `(new_weights, (m, v, t))`.
    """
    weights, gradient = _arrays(weights, gradient)
    if state is None:
        state = (np.zeros_like(weights), np.zeros_like(weights), 0)
    m, v, t = state
    t += 1
    real = weights.dtype.type  # Keras computes the powers in the variable's dtype
    alpha = (real(learning_rate) * np.sqrt(1 - real(beta_2) ** real(t))
             / (1 - real(beta_1) ** real(t)))
    m = m + (gradient - m) * (1 - beta_1)
    v = v + (np.square(gradient) - v) * (1 - beta_2)
    return weights - (m * alpha) / (np.sqrt(v) + epsilon), (m, v, t)


RULES = {"sgd": sgd, "momentum": momentum, "adagrad": adagrad, "rmsprop": rmsprop, "adam": adam}
"""The package's optimizer names (`models.training.optimizers.NAMES`) -> their update rules."""

STATE_PER_WEIGHT = {"sgd": 0, "momentum": 1, "adagrad": 1, "rmsprop": 1, "adam": 2}
"""Numbers each rule keeps per weight between steps (ERRATA #15)."""


def trajectory(name, weights, gradients, **hyperparameters):
    """Applies rule `name` to each gradient in turn; returns the weights after every step.

    Args:
        name: a key of `RULES`.
        weights: the starting weights.
        gradients: a sequence of gradients, each shaped like `weights`.
        **hyperparameters: passed to the rule (e.g. `learning_rate=0.1`).

    Returns:
        An array `[steps, *weights.shape]`.

    Raises:
        ValueError: an unknown name.
    """
    if name not in RULES:
        raise ValueError(f"`name` must be one of {', '.join(RULES)}. Received: name={name!r}")
    rule, state, path = RULES[name], None, []
    for gradient in gradients:
        weights, state = rule(weights, gradient, state, **hyperparameters)
        path.append(weights)
    return np.stack(path)
