"""Structural causal models with explicit exogenous noise.

An SCM (Pearl, *Causality*, 2009, ch. 7) is a set of assignments

.. math::  X_j := f_j(\\mathrm{PA}_j, U_j), \\qquad j = 1..d,

over a DAG, with jointly independent exogenous noise :math:`U_j`. Keeping the noise explicit is what
makes counterfactuals computable: sample :math:`u` once, then evaluate the assignments of the original
model and of an intervened model :math:`do(X_k := a)` on the *same* :math:`u` (abduction is trivial
because the noise is stored, not inferred).

Each variable has

* ``parents``: names of the variables its mechanism reads;
* ``noise(rng, n) -> array``: a sampler of its exogenous noise (leading dimension ``n``), or ``None``;
* ``mechanism(parents: dict[str, ndarray], noise: ndarray | None) -> ndarray`` of shape ``(n,)``.

Noise streams are seeded per (seed, variable name), so two SCMs that share a variable name and a
seed draw identical noise for it -- ``scm.do(x=1).sample(n, seed)`` and ``scm.sample(n, seed)``
agree on every non-descendant of ``x``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

Mechanism = Callable[[dict[str, np.ndarray], "np.ndarray | None"], np.ndarray]
NoiseSampler = Callable[[np.random.Generator, int], np.ndarray]
Seed = int | Sequence[int] | None

__all__ = ["SCM", "Variable", "Intervention", "derive_rng", "uniform_choice"]


def derive_rng(seed: Seed, *keys: int | str) -> np.random.Generator:
    """A numpy Generator seeded by ``seed`` and extra integer/string keys (strings hashed with CRC32).

    Different keys give independent streams (``numpy.random.SeedSequence`` entropy mixing).
    """
    entropy: list[int] = []
    if seed is None:
        entropy.append(0)
    elif isinstance(seed, (int, np.integer)):
        entropy.append(int(seed))
    else:
        entropy.extend(int(s) for s in seed)
    for key in keys:
        entropy.append(zlib.crc32(key.encode()) if isinstance(key, str) else int(key))
    if any(e < 0 for e in entropy):
        raise ValueError(f"seeds must be non-negative integers, got {entropy}")
    return np.random.default_rng(np.random.SeedSequence(entropy))


def uniform_choice(k: int) -> NoiseSampler:
    """A stochastic intervention ``X ~ Uniform{0..k-1}``: ``scm.do(x=uniform_choice(8))`` cuts the
    edges into ``x`` and draws it uniformly."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")

    def sampler(rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, k, n, dtype=np.int64)

    sampler.__name__ = f"uniform{{0..{k - 1}}}"
    return sampler


@dataclass(frozen=True)
class Intervention:
    """The right-hand side of ``do(X := value)``.

    ``kind`` is ``"constant"`` (a scalar), ``"array"`` (one value per sample) or ``"random"``
    (a callable ``(rng, n) -> array``: the variable becomes a fresh root with that distribution,
    e.g. uniform sampling to cut the edges into it).
    """

    kind: str
    value: Any

    @staticmethod
    def from_value(value: Any) -> Intervention:
        if isinstance(value, Intervention):
            return value
        if callable(value):
            return Intervention("random", value)
        arr = np.asarray(value)
        if arr.ndim == 0:
            return Intervention("constant", arr.item())
        if arr.ndim != 1:
            raise ValueError(
                f"an array intervention must be 1-D (one value per sample), got shape {arr.shape}"
            )
        return Intervention("array", arr)

    def describe(self) -> str:
        if self.kind == "constant":
            return repr(self.value)
        if self.kind == "array":
            return f"<array n={len(self.value)}>"
        name = getattr(self.value, "__name__", type(self.value).__name__)
        return f"~ {name}(rng, n)"


@dataclass(frozen=True)
class Variable:
    """One node of an SCM: ``value := mechanism(parents, noise)``; see the module docstring."""

    name: str
    parents: tuple[str, ...] = ()
    mechanism: Mechanism | None = None
    noise: NoiseSampler | None = None
    intervention: Intervention | None = None

    @property
    def effective_parents(self) -> tuple[str, ...]:
        """Parents in the (possibly intervened) graph: an intervened variable has none."""
        return () if self.intervention is not None else self.parents


def _identity(parents: dict[str, np.ndarray], noise: np.ndarray | None) -> np.ndarray:
    if noise is None:
        raise ValueError("identity mechanism needs noise")
    return noise


class SCM:
    """A structural causal model over named variables with explicit exogenous noise.

    Build it from :class:`Variable` objects or with the chaining builder::

        scm = (SCM()
               .add("z", noise=lambda rng, n: rng.normal(size=n))
               .add("x", parents=["z"], mechanism=lambda p, u: 2 * p["z"] + u,
                    noise=lambda rng, n: rng.normal(size=n)))
        values = scm.sample(1000, seed=0)           # dict name -> (n,) array
        u = scm.sample_noise(1000, seed=0)
        cf = scm.evaluate(u, interventions={"z": 0.0})   # counterfactual under do(z=0), same noise

    Raises:
        ValueError: duplicate names, unknown parents, cycles, a root without a noise sampler.
    """

    def __init__(self, variables: Iterable[Variable] = ()) -> None:
        self._vars: dict[str, Variable] = {}
        for var in variables:
            self._insert(var)
        if self._vars:
            self.topological_order()

    # ------------------------------------------------------------------ construction
    def _insert(self, var: Variable) -> None:
        if not isinstance(var.name, str) or not var.name:
            raise ValueError(f"variable names must be non-empty strings, got {var.name!r}")
        if var.name in self._vars:
            raise ValueError(f"duplicate variable {var.name!r}")
        if var.intervention is None and not var.parents and var.noise is None:
            raise ValueError(f"variable {var.name!r} has no parents and no noise sampler: give it noise=")
        if var.intervention is None and var.mechanism is None and (var.noise is None or var.parents):
            raise ValueError(f"variable {var.name!r} needs a mechanism (only a noise-only root may omit it)")
        if var.mechanism is None and var.intervention is None:
            var = replace(var, mechanism=_identity)
        self._vars[var.name] = var

    def add(
        self,
        name: str,
        parents: Sequence[str] = (),
        mechanism: Mechanism | None = None,
        noise: NoiseSampler | None = None,
    ) -> SCM:
        """Add a variable in place and return ``self`` (for chaining).

        A root with ``noise`` and no ``mechanism`` takes its noise as its value. Parents may be added
        later; the graph is checked when it is used (``topological_order``).
        """
        if isinstance(parents, str):
            parents = [parents]
        self._insert(Variable(name, tuple(parents), mechanism or (None if parents else _identity), noise))
        return self

    # ------------------------------------------------------------------ structure
    @property
    def variables(self) -> Mapping[str, Variable]:
        """Variables by name (read-only view, insertion order)."""
        return dict(self._vars)

    @property
    def names(self) -> list[str]:
        """Variable names in topological order."""
        return self.topological_order()

    @property
    def interventions(self) -> dict[str, Intervention]:
        """The interventions applied to this model, by variable."""
        return {n: v.intervention for n, v in self._vars.items() if v.intervention is not None}

    def __contains__(self, name: object) -> bool:
        return name in self._vars

    def __len__(self) -> int:
        return len(self._vars)

    def parents(self, name: str) -> tuple[str, ...]:
        """Parents of ``name`` in the (intervened) graph."""
        return self._get(name).effective_parents

    def _get(self, name: str) -> Variable:
        if name not in self._vars:
            raise KeyError(f"unknown variable {name!r}; variables: {sorted(self._vars)}")
        return self._vars[name]

    def topological_order(self) -> list[str]:
        """Names sorted so that every parent precedes its children (Kahn's algorithm, stable).

        Raises:
            ValueError: a parent that is not a variable, or a directed cycle (the cycle is named).
        """
        for var in self._vars.values():
            missing = [p for p in var.effective_parents if p not in self._vars]
            if missing:
                raise ValueError(
                    f"variable {var.name!r} has unknown parent(s) {missing}; variables: {sorted(self._vars)}"
                )
        indeg = {n: len(v.effective_parents) for n, v in self._vars.items()}
        children: dict[str, list[str]] = {n: [] for n in self._vars}
        for n, v in self._vars.items():
            for p in v.effective_parents:
                children[p].append(n)
        ready = [n for n in self._vars if indeg[n] == 0]
        order: list[str] = []
        while ready:
            n = ready.pop(0)
            order.append(n)
            for c in children[n]:
                indeg[c] -= 1
                if indeg[c] == 0:
                    ready.append(c)
        if len(order) != len(self._vars):
            raise ValueError(
                f"the graph has a cycle: {' -> '.join(self._find_cycle(set(self._vars) - set(order)))}"
            )
        return order

    def _find_cycle(self, nodes: set[str]) -> list[str]:
        start = sorted(nodes)[0]
        path = [start]
        seen = {start: 0}
        while True:
            nxt = next(p for p in self._vars[path[-1]].effective_parents if p in nodes)
            if nxt in seen:
                cycle = path[seen[nxt] :] + [nxt]
                return cycle[::-1]
            seen[nxt] = len(path)
            path.append(nxt)

    def graph(self) -> list[tuple[str, str]]:
        """Edges ``(parent, child)`` of the (intervened) DAG, children in topological order."""
        return [(p, n) for n in self.topological_order() for p in self._vars[n].effective_parents]

    def descendants(self, name: str) -> set[str]:
        """All variables reachable from ``name`` along directed edges (excluding ``name``)."""
        self._get(name)
        out: set[str] = set()
        frontier = [name]
        edges = self.graph()
        while frontier:
            cur = frontier.pop()
            for p, c in edges:
                if p == cur and c not in out:
                    out.add(c)
                    frontier.append(c)
        return out

    # ------------------------------------------------------------------ interventions
    def do(self, **assignments: Any) -> SCM:
        """Return a NEW SCM with ``X := a`` for each assignment; ``self`` is unchanged.

        An assignment is a constant, a 1-D array (one value per sample; its length must match the
        ``n`` it is evaluated with) or a callable ``(rng, n) -> array`` (a stochastic intervention: the
        variable becomes a root with that distribution, e.g. ``lambda rng, n: rng.integers(0, 8, n)``).
        Intervened variables lose their parents in :meth:`graph`.
        """
        for name in assignments:
            self._get(name)
        new = SCM()
        for name, var in self._vars.items():
            if name in assignments:
                var = replace(var, intervention=Intervention.from_value(assignments[name]))
            new._vars[name] = var
        new.topological_order()
        return new

    # ------------------------------------------------------------------ sampling
    def sample_noise(self, n: int, seed: Seed = 0) -> dict[str, np.ndarray]:
        """Draw the exogenous noise of every variable that has some, for ``n`` samples.

        Each variable's stream is seeded by ``(seed, name)``; a stochastic intervention draws from
        its own stream ``(seed, "do(name)")``.
        """
        n = _check_n(n)
        out: dict[str, np.ndarray] = {}
        for name, var in self._vars.items():
            iv = var.intervention
            if iv is not None:
                if iv.kind == "random":
                    out[name] = _check_len(np.asarray(iv.value(derive_rng(seed, f"do({name})"), n)), n, name)
                continue
            if var.noise is not None:
                out[name] = _check_len(np.asarray(var.noise(derive_rng(seed, name), n)), n, name)
        return out

    def evaluate(
        self,
        noise: Mapping[str, np.ndarray],
        interventions: Mapping[str, Any] | None = None,
        n: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Compute every variable from given noise (deterministic), optionally under ``do(...)``.

        ``interventions`` are constants or arrays (a stochastic intervention needs fresh noise: use
        ``scm.do(...).sample_noise``). ``n`` is inferred from the noise when not given.
        """
        if interventions:
            bad = [k for k, v in interventions.items() if callable(v) and not isinstance(v, Intervention)]
            if bad:
                raise TypeError(
                    f"evaluate() takes constant or array interventions, got callables for {bad}; "
                    "use scm.do(...).sample_noise(n, seed) for stochastic interventions"
                )
            return self.do(**interventions).evaluate(noise, n=n)
        if n is None:
            lens = {len(np.asarray(v)) for v in noise.values()}
            lens |= {
                len(v.intervention.value)
                for v in self._vars.values()
                if v.intervention is not None and v.intervention.kind == "array"
            }
            if len(lens) != 1:
                raise ValueError(f"cannot infer n from noise lengths {sorted(lens)}; pass n=")
            n = lens.pop()
        values: dict[str, np.ndarray] = {}
        for name in self.topological_order():
            var = self._vars[name]
            iv = var.intervention
            if iv is None:
                if var.noise is not None and name not in noise:
                    raise KeyError(f"noise for variable {name!r} is missing")
                parents = {p: values[p] for p in var.parents}
                assert var.mechanism is not None
                val = np.asarray(var.mechanism(parents, noise.get(name)))
            elif iv.kind == "constant":
                val = np.full(n, iv.value)
            elif iv.kind == "array":
                val = np.asarray(iv.value)
            else:
                if name not in noise:
                    raise KeyError(f"noise for the stochastic intervention on {name!r} is missing")
                val = np.asarray(noise[name])
            values[name] = _check_len(val, n, name, exact_1d=True)
        return values

    def sample(self, n: int, seed: Seed = 0) -> dict[str, np.ndarray]:
        """Ancestral sampling: ``evaluate(sample_noise(n, seed))``."""
        return self.evaluate(self.sample_noise(n, seed), n=n)

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        try:
            order = self.topological_order()
        except ValueError:
            order = list(self._vars)
        width = max((len(n) for n in order), default=0)
        k = len(self.interventions)
        lines = [f"SCM({len(order)} variables, {k} intervention{'' if k == 1 else 's'})"]
        for name in order:
            var = self._vars[name]
            if var.intervention is not None:
                rhs = f":= do({var.intervention.describe()})"
                if var.parents:
                    rhs += f"   [cut: {', '.join(var.parents)}]"
            elif var.parents:
                rhs = "<- " + ", ".join(var.parents)
            else:
                rhs = "<- (root)"
            lines.append(f"  {name.ljust(width)} {rhs}")
        return "\n".join(lines)


def _check_n(n: int) -> int:
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    return int(n)


def _check_len(val: np.ndarray, n: int, name: str, exact_1d: bool = False) -> np.ndarray:
    if val.ndim == 0 or val.shape[0] != n or (exact_1d and val.ndim != 1):
        want = f"({n},)" if exact_1d else f"({n}, ...)"
        raise ValueError(f"variable {name!r}: expected shape {want}, got {val.shape}")
    return val
