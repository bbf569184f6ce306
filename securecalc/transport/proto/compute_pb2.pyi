from securecalc.transport.proto import study_pb2 as _study_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CloseJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CloseJobReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckpointRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CheckpointReply(_message.Message):
    __slots__ = ("checkpoint_json",)
    CHECKPOINT_JSON_FIELD_NUMBER: _ClassVar[int]
    checkpoint_json: str
    def __init__(self, checkpoint_json: _Optional[str] = ...) -> None: ...

class OpenJobRequest(_message.Message):
    __slots__ = ("job_id", "sites", "n_values", "params", "params_context", "lifetime_seconds")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    N_VALUES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    LIFETIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    sites: _containers.RepeatedScalarFieldContainer[str]
    n_values: int
    params: _study_pb2.CkksParams
    params_context: bytes
    lifetime_seconds: float
    def __init__(self, job_id: _Optional[str] = ..., sites: _Optional[_Iterable[str]] = ..., n_values: _Optional[int] = ..., params: _Optional[_Union[_study_pb2.CkksParams, _Mapping]] = ..., params_context: _Optional[bytes] = ..., lifetime_seconds: _Optional[float] = ...) -> None: ...

class OpenJobReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CiphertextChunk(_message.Message):
    __slots__ = ("job_id", "index", "data", "signature")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    index: int
    data: bytes
    signature: bytes
    def __init__(self, job_id: _Optional[str] = ..., index: _Optional[int] = ..., data: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class SubmitReply(_message.Message):
    __slots__ = ("received",)
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    received: int
    def __init__(self, received: _Optional[int] = ...) -> None: ...

class FetchSumRequest(_message.Message):
    __slots__ = ("job_id", "wait_seconds")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    wait_seconds: float
    def __init__(self, job_id: _Optional[str] = ..., wait_seconds: _Optional[float] = ...) -> None: ...
