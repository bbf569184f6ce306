"""Dates and clinical events behind each synthetic patient, shared by the OMOP and FHIR
writers so that both describe the same people as the CSV cohort.

The cohort's values come from :func:`securecalc.synth.generate_site` unchanged; dates and
the distractor records (measurements after the index date, deaths after the end of
observation, ...) come from a separate stream ``(seed, site, 1)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from securecalc.synth import generate_site

FIRST_INDEX = dt.date(2015, 1, 1)
#: measured columns of the cohort, with their decimals (sbp is whole)
MEASURED = {"bmi": 1, "sbp": 0, "cholesterol": 2}


@dataclass(frozen=True)
class Measurement:
    column: str
    date: dt.date
    value: float


@dataclass(frozen=True)
class Patient:
    """One synthetic patient: the cohort row and the records that express it."""

    number: int  #: 1-based, the person_id and Patient.id
    male: bool
    birth: dt.date
    index: dt.date  #: start of observation
    end: dt.date  #: end of observation
    death: dt.date | None
    arm: str
    diabetes_onset: dt.date | None  #: on or before index exactly when the row says "yes"
    hypertension_onset: dt.date | None
    smoker: bool
    measurements: tuple[Measurement, ...] = field(default=())


def _birth(index: dt.date, age: int, days_before: int) -> dt.date:
    """A birth date with exactly ``age`` whole years at ``index``."""
    return index.replace(year=index.year - age) - dt.timedelta(days=days_before)


def site_patients(site_index: int, rows: int, seed: int = 0) -> Iterator[Patient]:
    """The patients of one site, in the cohort's row order."""
    data = generate_site(site_index, rows, np.random.default_rng([seed, site_index]))
    rng = np.random.default_rng([seed, site_index, 1])
    for j in range(rows):
        index = FIRST_INDEX + dt.timedelta(days=int(rng.integers(0, 1461)))
        if index.month == 2 and index.day == 29:
            index += dt.timedelta(days=1)
        followup = dt.timedelta(days=int(data["followup_days"][j]))
        if data["event"][j]:
            death: dt.date | None = index + followup
            assert death is not None
            end = death + dt.timedelta(days=int(rng.integers(0, 61)))
        else:
            end = index + followup
            late = rng.random() < 0.1  # dies after observation ended: not an event
            death = end + dt.timedelta(days=int(rng.integers(30, 901))) if late else None
        if data["diabetes"][j] == "yes":
            onset: dt.date | None = index - dt.timedelta(days=int(rng.integers(0, 2001)))
        elif rng.random() < 0.15:  # diagnosed after the index date: still "no"
            onset = index + dt.timedelta(days=int(rng.integers(1, 400)))
        else:
            onset = None
        hypertension = (index - dt.timedelta(days=int(rng.integers(0, 3000)))
                        if rng.random() < 0.3 else None)
        measurements = []
        for column, decimals in MEASURED.items():
            value = float(data[column][j])
            shift = round(float(rng.uniform(0.5, 3.0)), decimals)
            if not np.isnan(value):
                measurements.append(Measurement(column, index, value))
                if rng.random() < 0.3:  # an older value: the latest one on or before index wins
                    measurements.append(Measurement(column, index - dt.timedelta(days=200),
                                                    round(value + shift, decimals)))
            if rng.random() < 0.3:  # measured again after the index date: ignored
                base = value if not np.isnan(value) else {"bmi": 27.0, "cholesterol": 5.0}[column]
                measurements.append(Measurement(column, index + dt.timedelta(days=100),
                                                round(base + shift, decimals)))
        yield Patient(
            number=j + 1, male=bool(data["sex"][j] == "M"),
            birth=_birth(index, int(data["age"][j]), int(rng.integers(0, 301))),
            index=index, end=end, death=death, arm=str(data["arm"][j]),
            diabetes_onset=onset, hypertension_onset=hypertension,
            smoker=bool(rng.random() < 0.2), measurements=tuple(measurements))


def value_text(measurement: Measurement) -> str:
    """The value with the cohort's decimals (as the CSV cohort writes it)."""
    decimals = MEASURED[measurement.column]
    return str(int(measurement.value)) if decimals == 0 else f"{measurement.value:.{decimals}f}"


__all__ = ["MEASURED", "Measurement", "Patient", "site_patients", "value_text"]
