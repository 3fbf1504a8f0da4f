"""The one cost formula: what a change of position costs, as a fraction of equity.

cost = |Δp| × (commission_bps + slippage_bps(side)) / 10⁴
     + per-share commission: shares × commission_per_share, bounded below by
       commission_min (per trade) and above by commission_max_pct × traded notional,
       divided by equity in currency.

Δp is the change of position as a fraction of equity; shares = |Δp| × equity / price.
The equity in currency is the account value when the trade happens (the env carries it
across the sessions of a replay), so per-share and minimum fees weigh more on a smaller
account.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.config.models import CostConfig


@dataclass(frozen=True)
class CostModel:
    buy_rate: float  # fraction of notional when buying (commission + slippage)
    sell_rate: float  # fraction of notional when selling
    per_share: float  # currency per share
    min_fee: float  # lower bound of the per-share fee, currency per trade
    max_pct: float | None  # upper bound of the per-share fee, fraction of traded notional

    @classmethod
    def from_config(cls, cfg: CostConfig) -> CostModel:
        return cls(
            buy_rate=(cfg.commission_bps + cfg.slippage_buy_bps) / 1e4,
            sell_rate=(cfg.commission_bps + cfg.slippage_sell_bps) / 1e4,
            per_share=cfg.commission_per_share,
            min_fee=cfg.commission_min,
            max_pct=cfg.commission_max_pct,
        )

    def scaled(self, factor: float) -> CostModel:
        """The same model with every cost term multiplied by ``factor`` (cost sensitivity).

        The cap ``max_pct`` is scaled too: it bounds the fee per unit of notional, so leaving
        it fixed would keep capped trades at 1× costs in a "2× costs" replay. Every trade
        then costs exactly ``factor`` times as much.
        """
        if not factor >= 0.0:
            raise ValueError(f"cost scale must be >= 0, got {factor!r}")
        return CostModel(
            self.buy_rate * factor,
            self.sell_rate * factor,
            self.per_share * factor,
            self.min_fee * factor,
            None if self.max_pct is None else self.max_pct * factor,
        )

    def fraction(self, delta: float, price: float, equity_cash: float) -> float:
        """Cost of trading ``delta`` (fraction of equity) at ``price``, as a fraction of equity."""
        if delta == 0.0:
            return 0.0
        size = delta if delta > 0.0 else -delta
        cost = size * (self.buy_rate if delta > 0.0 else self.sell_rate)
        if self.per_share > 0.0 or self.min_fee > 0.0:
            notional = size * equity_cash
            fee = notional / price * self.per_share
            if fee < self.min_fee:
                fee = self.min_fee
            if self.max_pct is not None and fee > self.max_pct * notional:
                fee = self.max_pct * notional
            cost += fee / equity_cash
        return cost
