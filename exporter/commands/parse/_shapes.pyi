from collections.abc import Sequence

from _typeshed import ReadableBuffer

def undeleted(
    data: ReadableBuffer,
    start: int,
    end: int,
    kubelet_shape: ReadableBuffer,
    starts: Sequence[bytes],
    ts_max: int,
    caller_max: int,
    msg_max: int,
    tail_max: int,
    /,
) -> tuple[int, int, bytes]: ...
