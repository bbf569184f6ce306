"""Every default and floor of a study, a job, a node's policy and a configuration file, once.

The models of :mod:`securecalc.core.model`, the records built from them (StudyConfig, Job,
Policy) and the kinds' study options take their defaults from here, so a default changed
here changes everywhere.
"""

from __future__ import annotations

from typing import Final

#: counts below this are suppressed (0 is released as 0)
MIN_CELL_COUNT: Final = 5
#: analyses whose cohort (n) is smaller are withheld, decided inside the secure computation
MIN_COHORT: Final = 10

ENGINES: Final = ("mpc", "ckks")
#: the fewest parties each engine may run with: MPC with honest majority needs 3 (with 2, one
#: party's share alone would reveal the other's input); CKKS needs 2 (with a single site the
#: coordinator would decrypt that site's aggregates)
MIN_PARTIES: Final = {"mpc": 3, "ckks": 2}
MIN_PARTIES_WHY: Final = {
    "mpc": "MPC with honest majority needs at least 3 parties: with 2, one party's share "
           "alone would reveal the other's input",
    "ckks": "with a single site the coordinator would decrypt that site's aggregates",
}

#: seconds a whole study may take, and a peer may stay silent
TIMEOUT_SECONDS: Final = 120.0
PEER_TIMEOUT_SECONDS: Final = 15.0
#: fractional bits kept of each decrypted (normalised) CKKS value, and the range allowed
CKKS_RELEASE_BITS: Final = 20
CKKS_RELEASE_BITS_MAX: Final = 40

#: certificate names allowed to start studies, and the compute node's name
COORDINATORS: Final = ("coordinator",)
COMPUTE: Final = "compute"

#: ``[policy] ckks``: no CKKS; only differentially private analyses; anything else allowed
CKKS_MODES: Final = ("refuse", "epsilon", "exact")
POLICY_CKKS: Final = "epsilon"
#: ``[policy] min_parties`` by default, and the lowest a policy may set
POLICY_MIN_PARTIES: Final = 3
POLICY_MIN_PARTIES_FLOOR: Final = 2

#: differential privacy on a node that sets no budget of its own (see SECURITY.md,
#: "Differential privacy by default"): the largest epsilon one analysis may spend, what one
#: study may spend over all its runs, and what all studies together may spend
MAX_EPSILON: Final = 1.0
DP_STUDY_BUDGET: Final = 2.0
DP_TOTAL_BUDGET: Final = 5.0
