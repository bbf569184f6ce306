"""Compatibility re-exports for importers not yet moved: a site's local inputs are
:mod:`securecalc.core.local`; their MPC steps and CKKS vector are built by the engines'
adapters (:mod:`securecalc.engines.mpc.adapter`, :mod:`securecalc.engines.ckks.adapter`)."""

from securecalc.core.local import LocalContribution
from securecalc.core.local import local_contributions as contributions
from securecalc.engines.ckks.adapter import site_vector as ckks_inputs
from securecalc.engines.mpc.adapter import site_steps as mpc_steps

__all__ = ["LocalContribution", "ckks_inputs", "contributions", "mpc_steps"]
