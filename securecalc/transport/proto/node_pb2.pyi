from securecalc.transport.proto import study_pb2 as _study_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobConfirmation(_message.Message):
    __slots__ = ("job_id", "digest")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    digest: str
    def __init__(self, job_id: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class ConfirmReply(_message.Message):
    __slots__ = ("same", "pending")
    SAME_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    same: bool
    pending: bool
    def __init__(self, same: _Optional[bool] = ..., pending: _Optional[bool] = ...) -> None: ...

class HeadsRequest(_message.Message):
    __slots__ = ("job_id", "checkpoint_json", "outcomes")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_JSON_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    checkpoint_json: _containers.RepeatedScalarFieldContainer[str]
    outcomes: _containers.RepeatedCompositeFieldContainer[ReleaseOutcome]
    def __init__(self, job_id: _Optional[str] = ..., checkpoint_json: _Optional[_Iterable[str]] = ..., outcomes: _Optional[_Iterable[_Union[ReleaseOutcome, _Mapping]]] = ...) -> None: ...

class ReleaseOutcome(_message.Message):
    __slots__ = ("analysis_id", "status", "note", "digest")
    ANALYSIS_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    analysis_id: str
    status: str
    note: str
    digest: str
    def __init__(self, analysis_id: _Optional[str] = ..., status: _Optional[str] = ..., note: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class HeadsReply(_message.Message):
    __slots__ = ("stored",)
    STORED_FIELD_NUMBER: _ClassVar[int]
    stored: int
    def __init__(self, stored: _Optional[int] = ...) -> None: ...

class MpcJobRequest(_message.Message):
    __slots__ = ("spec", "peer_timeout_seconds")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    PEER_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    spec: _study_pb2.JobSpec
    peer_timeout_seconds: float
    def __init__(self, spec: _Optional[_Union[_study_pb2.JobSpec, _Mapping]] = ..., peer_timeout_seconds: _Optional[float] = ...) -> None: ...

class StepOutcome(_message.Message):
    __slots__ = ("analysis_id", "totals", "seconds", "bytes_sent", "rounds")
    ANALYSIS_ID_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    analysis_id: str
    totals: _containers.RepeatedScalarFieldContainer[str]
    seconds: float
    bytes_sent: int
    rounds: int
    def __init__(self, analysis_id: _Optional[str] = ..., totals: _Optional[_Iterable[str]] = ..., seconds: _Optional[float] = ..., bytes_sent: _Optional[int] = ..., rounds: _Optional[int] = ...) -> None: ...

class MpcJobReply(_message.Message):
    __slots__ = ("steps", "local_seconds", "setup_seconds", "bytes_sent", "rounds", "checkpoint_json")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SETUP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_JSON_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[StepOutcome]
    local_seconds: float
    setup_seconds: float
    bytes_sent: int
    rounds: int
    checkpoint_json: str
    def __init__(self, steps: _Optional[_Iterable[_Union[StepOutcome, _Mapping]]] = ..., local_seconds: _Optional[float] = ..., setup_seconds: _Optional[float] = ..., bytes_sent: _Optional[int] = ..., rounds: _Optional[int] = ..., checkpoint_json: _Optional[str] = ...) -> None: ...

class MpcFrame(_message.Message):
    __slots__ = ("job_id", "data")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    data: bytes
    def __init__(self, job_id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ExchangeAck(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: int
    def __init__(self, frames: _Optional[int] = ...) -> None: ...

class CkksJobSpec(_message.Message):
    __slots__ = ("spec", "compute_address", "compute_name", "params", "n_values", "states_json", "peer_timeout_seconds")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    N_VALUES_FIELD_NUMBER: _ClassVar[int]
    STATES_JSON_FIELD_NUMBER: _ClassVar[int]
    PEER_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    spec: _study_pb2.JobSpec
    compute_address: str
    compute_name: str
    params: _study_pb2.CkksParams
    n_values: int
    states_json: str
    peer_timeout_seconds: float
    def __init__(self, spec: _Optional[_Union[_study_pb2.JobSpec, _Mapping]] = ..., compute_address: _Optional[str] = ..., compute_name: _Optional[str] = ..., params: _Optional[_Union[_study_pb2.CkksParams, _Mapping]] = ..., n_values: _Optional[int] = ..., states_json: _Optional[str] = ..., peer_timeout_seconds: _Optional[float] = ...) -> None: ...

class CkksJobChunk(_message.Message):
    __slots__ = ("spec", "context_chunk")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_CHUNK_FIELD_NUMBER: _ClassVar[int]
    spec: CkksJobSpec
    context_chunk: bytes
    def __init__(self, spec: _Optional[_Union[CkksJobSpec, _Mapping]] = ..., context_chunk: _Optional[bytes] = ...) -> None: ...

class CkksJobReply(_message.Message):
    __slots__ = ("bytes_sent", "ciphertexts", "local_seconds", "encrypt_seconds", "checkpoint_json")
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXTS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENCRYPT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_JSON_FIELD_NUMBER: _ClassVar[int]
    bytes_sent: int
    ciphertexts: int
    local_seconds: float
    encrypt_seconds: float
    checkpoint_json: str
    def __init__(self, bytes_sent: _Optional[int] = ..., ciphertexts: _Optional[int] = ..., local_seconds: _Optional[float] = ..., encrypt_seconds: _Optional[float] = ..., checkpoint_json: _Optional[str] = ...) -> None: ...
