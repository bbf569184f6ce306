"""The synthetic cohort of :mod:`securecalc.synth` as an OMOP CDM v5.4 extract and as a FHIR
R4 Bulk Data export, with the column definitions under which a node reads the same rows."""

from securecalc.sources.synthetic.definitions import (
    SYNTH_FHIR_COLUMNS,
    SYNTH_OMOP_COLUMNS,
    synth_fhir_source,
    synth_omop_source,
)
from securecalc.sources.synthetic.fhir import write_fhir
from securecalc.sources.synthetic.omop import OMOP_TABLES, load_omop, write_omop

__all__ = ["OMOP_TABLES", "SYNTH_FHIR_COLUMNS", "SYNTH_OMOP_COLUMNS", "load_omop",
           "synth_fhir_source", "synth_omop_source", "write_fhir", "write_omop"]
