"""Paired evaluation of negotiation strategies (off chain).

Design: for each seed a list of *games* is drawn once -- our side's preferences, a queue of
counterparties (tactic, preferences, private deadline, rng stream), who opens -- independently of the
strategies under test. Every strategy then plays exactly the same games against exactly the same
counterparties; only our side's strategy changes. A strategy's score for a seed is its mean utility over
the games, on the same multi-issue utility it optimises (no deal: the reservation utility); the
price-only score (our normalised price score, 0 without a deal) is reported beside it.

Comparisons are per seed differences ``d_s = mean_A,s - mean_B,s`` (paired), summarised by their mean and a
95% t-interval over seeds, and as a relative gain ``sum_s mean_A,s / sum_s mean_B,s - 1`` (ratio of means,
not mean of ratios) with a delta-method 95% interval. Baselines: each fixed tactic, the per-seed average of
the fixed tactics, and the best fixed tactic (chosen after the fact, per opponent stratum).

Rematching: a game offers ``counterparties`` counterparties in turn; after a failed (or abandoned)
negotiation our side moves to the next one, whose surplus over the reservation counts ``discount`` times
less per step (time lost). Fixed tactics rematch only after a failure; learners may walk away earlier.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agentmarket.strategies.adaptive import AdaptiveBargainer, ArmChoice
from agentmarket.strategies.bargaining import NegotiationResult, Negotiator, Responder, Role, negotiate
from agentmarket.strategies.concession import ImitationMode, Tactic, TimeDependent, TitForTat
from agentmarket.strategies.opponent import BayesianBargainer
from agentmarket.strategies.scenarios import random_preferences
from agentmarket.strategies.utility import Preferences

__all__ = [
    "FIXED_TACTICS",
    "Comparison",
    "Counterparty",
    "Game",
    "GameOutcome",
    "Player",
    "StrategyRuns",
    "compare",
    "default_strategies",
    "draw_games",
    "evaluate",
    "paired_summary",
    "t_quantile",
]

FIXED_TACTICS: dict[str, Tactic] = {
    "boulware": TimeDependent(0.2),
    "linear": TimeDependent(1.0),
    "conceder": TimeDependent(3.0),
    "tit-for-tat": TitForTat(ImitationMode.RELATIVE, deadline=TimeDependent(0.5)),
}
DEADLINES = (0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True)
class Counterparty:
    """One opponent: its tactic (a key of :data:`FIXED_TACTICS`), preferences, private deadline and rng stream."""

    tactic: str
    preferences: Preferences
    deadline: float
    stream: int


@dataclass(frozen=True)
class Game:
    """One buying need: our preferences and the counterparties the market offers, in order."""

    index: int
    preferences: Preferences
    counterparties: tuple[Counterparty, ...]
    max_rounds: int
    opener: Role

    @property
    def opponent(self) -> str:
        """The first counterparty's tactic (the stratum the game is reported under)."""
        return self.counterparties[0].tactic


def draw_games(
    seed: int,
    n_games: int,
    max_rounds: int = 20,
    counterparties: int = 2,
    tactics: Sequence[str] = tuple(FIXED_TACTICS),
) -> list[Game]:
    """The games of one seed; depends only on its arguments (never on the strategies evaluated).

    The first counterparty's tactic cycles through ``tactics`` so every stratum gets the same share.
    """
    if n_games < 1 or counterparties < 1:
        raise ValueError("need at least one game and one counterparty")
    rng = random.Random(f"games/{seed}")
    games = []
    for i in range(n_games):
        ours = random_preferences(Role.BUYER, rng)
        cps = []
        for k in range(counterparties):
            tactic = tactics[i % len(tactics)] if k == 0 else rng.choice(list(tactics))
            cps.append(
                Counterparty(
                    tactic,
                    random_preferences(Role.SELLER, rng),
                    rng.choice(DEADLINES),
                    rng.getrandbits(63),
                )
            )
        opener = Role.BUYER if rng.random() < 0.5 else Role.SELLER
        games.append(Game(i, ours, tuple(cps), max_rounds, opener))
    return games


class Player(Protocol):
    """Our side for one seed (fresh learning state per seed)."""

    def side(
        self, preferences: Preferences, max_rounds: int, opponent_key: str, more_counterparties: bool
    ) -> Negotiator | Responder:
        """The side to negotiate with (``more_counterparties``: another counterparty follows on failure)."""
        ...

    def learn(self, preferences: Preferences, result: NegotiationResult) -> None:
        """Feed back one negotiation's outcome."""
        ...


@dataclass
class FixedPlayer:
    """A fixed tactic: same behaviour every game."""

    tactic: Tactic
    name: str = "fixed"

    def side(
        self, preferences: Preferences, max_rounds: int, opponent_key: str, more_counterparties: bool
    ) -> Negotiator | Responder:
        return Negotiator(Role.BUYER, preferences, self.tactic, name=self.name)

    def learn(self, preferences: Preferences, result: NegotiationResult) -> None:
        return None


@dataclass
class BanditPlayer:
    """The UCB1 bandit over concession exponents (:class:`AdaptiveBargainer`), learning across games."""

    seed: int
    learner: AdaptiveBargainer = field(default_factory=lambda: AdaptiveBargainer(Role.BUYER))
    _choice: ArmChoice | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(f"bandit/{self.seed}")

    def side(
        self, preferences: Preferences, max_rounds: int, opponent_key: str, more_counterparties: bool
    ) -> Negotiator | Responder:
        self._choice = self.learner.choose(self._rng)
        return self.learner.negotiator(preferences, self._choice)

    def learn(self, preferences: Preferences, result: NegotiationResult) -> None:
        assert self._choice is not None
        self.learner.learn(self._choice, result.utility_for(preferences))


@dataclass
class BayesPlayer:
    """The in-negotiation Bayesian learner (:class:`BayesianBargainer`)."""

    discount: float
    walk_away: bool = True
    learner: BayesianBargainer = field(default_factory=lambda: BayesianBargainer(Role.BUYER))

    def side(
        self, preferences: Preferences, max_rounds: int, opponent_key: str, more_counterparties: bool
    ) -> Negotiator | Responder:
        rematch = self.discount if (more_counterparties and self.walk_away) else None
        return self.learner.negotiator(preferences, max_rounds, rematch)

    def learn(self, preferences: Preferences, result: NegotiationResult) -> None:
        self.learner.learn(preferences, result)


PlayerFactory = Callable[[int], Player]  # seed -> fresh player


def default_strategies(discount: float = 0.9) -> dict[str, PlayerFactory]:
    """The four fixed tactics, the bandit and the Bayesian learner."""
    out: dict[str, PlayerFactory] = {}
    for name, tactic in FIXED_TACTICS.items():
        out[name] = lambda seed, t=tactic, n=name: FixedPlayer(t, n)  # type: ignore[misc]
    out["bandit"] = lambda seed: BanditPlayer(seed)
    out["bayes"] = lambda seed: BayesPlayer(discount)
    return out


@dataclass(frozen=True)
class GameOutcome:
    """What our side got in one game."""

    game: int
    opponent: str
    utility: float  # multi-issue utility, rematch-discounted surplus over the reservation
    price_utility: float  # our price score of the deal (discounted), 0 without a deal
    deal: bool
    counterparty: int  # index of the counterparty the game ended with
    faced: tuple[
        tuple[str, float, int], ...
    ]  # (tactic, deadline, stream) of every counterparty negotiated with
    opponent_first_offers: tuple[
        tuple[int, int, int] | None, ...
    ]  # each opponent's first offer (pairing check)


def play(player: Player, games: Sequence[Game], discount: float) -> list[GameOutcome]:
    """Play every game in order with one player (its learning state carries over between games)."""
    out = []
    for game in games:
        prefs = game.preferences
        res = prefs.reservation
        utility, price_u, deal, last = res, 0.0, False, 0
        faced: list[tuple[str, float, int]] = []
        firsts: list[tuple[int, int, int] | None] = []
        for k, cp in enumerate(game.counterparties):
            more = k + 1 < len(game.counterparties)
            ours = player.side(prefs, game.max_rounds, cp.tactic, more)
            opponent = Negotiator(
                Role.SELLER, cp.preferences, FIXED_TACTICS[cp.tactic], name=cp.tactic, deadline=cp.deadline
            )
            result = negotiate(ours, opponent, game.max_rounds, random.Random(cp.stream), game.opener)
            player.learn(prefs, result)
            faced.append((cp.tactic, cp.deadline, cp.stream))
            first = next((s.terms for s in result.trace if s.actor is Role.SELLER), None)
            firsts.append(None if first is None else (first.price, first.delivery_seconds, first.bond))
            last = k
            if result.agreement is not None:
                factor = discount**k
                utility = res + factor * (prefs.utility(result.agreement.terms) - res)
                price_u = factor * prefs.price.score(result.agreement.price)
                deal = True
                break
        out.append(
            GameOutcome(game.index, game.opponent, utility, price_u, deal, last, tuple(faced), tuple(firsts))
        )
    return out


@dataclass
class StrategyRuns:
    """Per strategy, per seed, the game outcomes."""

    seeds: list[int]
    outcomes: dict[str, dict[int, list[GameOutcome]]]

    def seed_means(self, strategy: str, opponent: str | None = None, price: bool = False) -> list[float]:
        """Per-seed mean score of ``strategy`` (over the games against ``opponent``, or all games)."""
        means = []
        for s in self.seeds:
            vals = [
                (o.price_utility if price else o.utility)
                for o in self.outcomes[strategy][s]
                if opponent is None or o.opponent == opponent
            ]
            means.append(statistics.fmean(vals))
        return means


def evaluate(
    strategies: Mapping[str, PlayerFactory],
    seeds: Sequence[int],
    n_games: int = 200,
    max_rounds: int = 20,
    counterparties: int = 2,
    discount: float = 0.9,
) -> StrategyRuns:
    """Play every strategy on the same games of every seed."""
    outcomes: dict[str, dict[int, list[GameOutcome]]] = {name: {} for name in strategies}
    for seed in seeds:
        games = draw_games(seed, n_games, max_rounds, counterparties)
        for name, factory in strategies.items():
            outcomes[name][seed] = play(factory(seed), games, discount)
    return StrategyRuns(list(seeds), outcomes)


def t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t (Cornish-Fisher expansion around the normal; error < 1e-3 for df >= 5)."""
    if df < 1:
        raise ValueError("df must be at least 1")
    z = statistics.NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of A against B over seeds."""

    mean_a: float
    mean_b: float
    diff: float
    diff_lo: float
    diff_hi: float
    rel: float
    rel_lo: float
    rel_hi: float
    n: int

    @property
    def significant(self) -> bool:
        """True when the 95% interval of the difference excludes 0."""
        return self.diff_lo > 0 or self.diff_hi < 0


def paired_summary(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Mean and 95% t-interval of ``a - b`` (paired by index) and the ratio of means with a delta-method CI."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError("need two paired samples of the same length >= 2")
    n = len(a)
    d = [x - y for x, y in zip(a, b, strict=False)]
    q = t_quantile(0.975, n - 1)
    md = statistics.fmean(d)
    sd = statistics.stdev(d)
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    if mb != 0:
        r = ma / mb
        # delta method: Var(mean_a / mean_b) ~ Var(a - r b) / (n mean_b^2)
        resid = [x - r * y for x, y in zip(a, b, strict=False)]
        se_r = statistics.stdev(resid) / (math.sqrt(n) * abs(mb))
        rel, rel_lo, rel_hi = r - 1, r - 1 - q * se_r, r - 1 + q * se_r
    else:
        rel = rel_lo = rel_hi = math.nan
    half = q * sd / math.sqrt(n)
    return Comparison(ma, mb, md, md - half, md + half, rel, rel_lo, rel_hi, n)


def compare(
    runs: StrategyRuns,
    learner: str,
    fixed: Sequence[str] = tuple(FIXED_TACTICS),
    opponent: str | None = None,
    price: bool = False,
) -> dict[str, Comparison]:
    """``learner`` against each fixed tactic, their per-seed average (``"average"``) and the best one
    (``"best:<name>"``, the highest mean in this stratum, chosen after the fact)."""
    a = runs.seed_means(learner, opponent, price)
    per = {f: runs.seed_means(f, opponent, price) for f in fixed}
    out = {f: paired_summary(a, b) for f, b in per.items()}
    avg = [statistics.fmean(vals) for vals in zip(*per.values(), strict=False)]
    out["average"] = paired_summary(a, avg)
    best = max(fixed, key=lambda f: statistics.fmean(per[f]))
    out[f"best:{best}"] = out[best]
    return out
