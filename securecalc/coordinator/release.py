"""Compatibility re-exports for importers not yet moved: results are made by
:func:`securecalc.core.release.result_of`; released numbers are decoded by the engines'
adapters (:mod:`securecalc.engines.mpc.adapter`, :mod:`securecalc.engines.ckks.adapter`)."""

from securecalc.core.release import UNGATED, Withheld
from securecalc.core.release import result_of as finish
from securecalc.engines.ckks.adapter import released_from as from_ckks
from securecalc.engines.mpc.adapter import released_from as from_mpc

__all__ = ["UNGATED", "Withheld", "finish", "from_ckks", "from_mpc"]
