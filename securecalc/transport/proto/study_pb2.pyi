from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ColumnSpec(_message.Message):
    __slots__ = ("name", "type", "min", "max", "levels")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    min: float
    max: float
    levels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., levels: _Optional[_Iterable[str]] = ...) -> None: ...

class AnalysisSpec(_message.Message):
    __slots__ = ("id", "kind", "table_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TABLE_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    table_json: str
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., table_json: _Optional[str] = ...) -> None: ...

class PartyRef(_message.Message):
    __slots__ = ("name", "address")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("study", "job_id", "parties", "schema", "analyses", "min_cell_count", "min_cohort")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    ANALYSES_FIELD_NUMBER: _ClassVar[int]
    MIN_CELL_COUNT_FIELD_NUMBER: _ClassVar[int]
    MIN_COHORT_FIELD_NUMBER: _ClassVar[int]
    study: str
    job_id: str
    parties: _containers.RepeatedCompositeFieldContainer[PartyRef]
    schema: _containers.RepeatedCompositeFieldContainer[ColumnSpec]
    analyses: _containers.RepeatedCompositeFieldContainer[AnalysisSpec]
    min_cell_count: int
    min_cohort: int
    def __init__(self, study: _Optional[str] = ..., job_id: _Optional[str] = ..., parties: _Optional[_Iterable[_Union[PartyRef, _Mapping]]] = ..., schema: _Optional[_Iterable[_Union[ColumnSpec, _Mapping]]] = ..., analyses: _Optional[_Iterable[_Union[AnalysisSpec, _Mapping]]] = ..., min_cell_count: _Optional[int] = ..., min_cohort: _Optional[int] = ...) -> None: ...

class CkksParams(_message.Message):
    __slots__ = ("poly_modulus_degree", "coeff_mod_bit_sizes", "scale_bits")
    POLY_MODULUS_DEGREE_FIELD_NUMBER: _ClassVar[int]
    COEFF_MOD_BIT_SIZES_FIELD_NUMBER: _ClassVar[int]
    SCALE_BITS_FIELD_NUMBER: _ClassVar[int]
    poly_modulus_degree: int
    coeff_mod_bit_sizes: _containers.RepeatedScalarFieldContainer[int]
    scale_bits: int
    def __init__(self, poly_modulus_degree: _Optional[int] = ..., coeff_mod_bit_sizes: _Optional[_Iterable[int]] = ..., scale_bits: _Optional[int] = ...) -> None: ...
