"""Penalised logistic regression in plain Python, for the few-parameter fits of the scorer.

Used by bench/fit_scorer.py (fitting the shipped weights) and by `tracker-bridge calibrate` (refitting them from the
store's outcomes). Plain Python because the fits are tiny (tens of parameters, hundreds of rows) and the daemon must
not need numpy for them. Newton's method (iteratively reweighted least squares) converges in a few steps.

The penalty pulls the coefficients toward `prior` (zeros by default) with strength `lam`: with a prior of the
shipped weights, a handful of outcomes moves a weight only a little, and many consistent outcomes move it far.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Solve a x = b by Gaussian elimination with partial pivoting (a is small and positive definite)."""
    n = len(b)
    m = [[*row[:], b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        p = m[col][col]
        if abs(p) < 1e-12:
            continue
        for r in range(col + 1, n):
            f = m[r][col] / p
            if f:
                row, top = m[r], m[col]
                for c in range(col, n + 1):
                    row[c] -= f * top[c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        s = m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))
        x[r] = s / m[r][r] if abs(m[r][r]) >= 1e-12 else 0.0
    return x


def fit_logistic(
    rows: Sequence[Sequence[float]],
    targets: Sequence[float],
    lam: float,
    prior: Sequence[float] | None = None,
    intercept_prior: float = 0.0,
    iterations: int = 25,
) -> tuple[float, list[float]]:
    """(intercept, coefficients) maximising the log-likelihood minus lam/2 * |coef - prior|^2.

    `targets` are in [0, 1]: 0/1 labels or fractions (a resolved fraction of 24 runs is a soft label). The intercept
    is not penalised; it starts at `intercept_prior`.
    """
    k = len(rows[0]) if rows else len(prior or ())
    pri = list(prior) if prior is not None else [0.0] * k
    beta = [intercept_prior, *pri]
    if not rows:
        return beta[0], beta[1:]
    xs = [[1.0, *r] for r in rows]

    def objective(b: list[float]) -> float:
        """Penalised log-likelihood (higher is better)."""
        total = 0.0
        for x, y in zip(xs, targets, strict=True):
            z = sum(bi * v for bi, v in zip(b, x, strict=True))
            # log(sigmoid(z)) and log(1 - sigmoid(z)) without overflow
            log_p = -math.log1p(math.exp(-z)) if z >= 0 else z - math.log1p(math.exp(z))
            log_q = log_p - z
            total += y * log_p + (1.0 - y) * log_q
        return total - lam / 2 * sum((b[i] - pri[i - 1]) ** 2 for i in range(1, k + 1))

    current = objective(beta)
    for _ in range(iterations):
        grad = [0.0] * (k + 1)
        hess = [[0.0] * (k + 1) for _ in range(k + 1)]
        for x, y in zip(xs, targets, strict=True):
            p = sigmoid(sum(b * v for b, v in zip(beta, x, strict=True)))
            w = max(p * (1.0 - p), 1e-9)
            d = y - p
            for i, xi in enumerate(x):
                if xi == 0.0:
                    continue
                grad[i] += d * xi
                hi = hess[i]
                wxi = w * xi
                for j in range(i, k + 1):
                    if x[j] != 0.0:
                        hi[j] += wxi * x[j]
        for i in range(k + 1):
            for j in range(i):
                hess[i][j] = hess[j][i]
        for i in range(1, k + 1):
            grad[i] -= lam * (beta[i] - pri[i - 1])
            hess[i][i] += lam
        hess[0][0] += 1e-6
        step = _solve(hess, grad)
        # Newton's step, halved until it improves the objective: far from the optimum a full step can overshoot
        # (a column that never varies, like a factor always at 1.0, trades off against the intercept).
        scale = 1.0
        for _halving in range(30):
            trial = [b + scale * s for b, s in zip(beta, step, strict=True)]
            value = objective(trial)
            if value >= current - 1e-12:
                break
            scale /= 2
        else:
            break
        beta, current = trial, value
        if max(abs(scale * s) for s in step) < 1e-7:
            break
    return beta[0], beta[1:]


def predict(intercept: float, coef: Sequence[float], row: Sequence[float]) -> float:
    return sigmoid(intercept + sum(c * v for c, v in zip(coef, row, strict=True)))
