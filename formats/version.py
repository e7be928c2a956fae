"""The .mob format version and the rules for changing it.

FORMAT_VERSION = (major, minor) written into every file.

- Bump MINOR when adding something an old reader can safely ignore: a field
  appended at the end of a table, a value appended to an enum (an old reader
  refuses an unknown op type or dtype with a clear message, it never misreads).
- Bump MAJOR only when an old reader would *misread* a new file (changed
  meaning of an existing field, changed layout rules). Readers refuse files
  whose major version is newer than theirs; older majors are read if still
  supported (none yet: 1 is the first).
- Fields are never removed or renumbered; enums are append-only (see
  formats/mobconv.fbs).
"""
from mobconv.errors import ModelFormatError

# History: 1.0 first release; 1.1 adds Tensor.compressed (sparse bitmask / palette
# constants). A 1.1 file with a compressed tensor has Tensor.buffer = 0 there, so a 1.0
# reader sees a constant-less tensor feeding an op and refuses the model (it never
# misreads bytes): a minor bump. Files without compressed tensors are 1.0 files in
# everything but the number.
FORMAT_VERSION = (1, 1)
FILE_IDENTIFIER = b"MOB1"
# Constant buffers start at multiples of this many bytes from the file start.
BUFFER_ALIGNMENT = 64


def check_version(major: int, minor: int, source: str) -> None:
    """Raise ModelFormatError unless this mobconv can read a file of version major.minor."""
    if major > FORMAT_VERSION[0]:
        raise ModelFormatError(
            f"{source}: model format version {major}.{minor} is newer than this mobconv "
            f"supports ({FORMAT_VERSION[0]}.x); upgrade mobconv"
        )
    if major < 1:
        raise ModelFormatError(
            f"{source}: model format version {major}.{minor} is invalid (versions start at 1.0)"
        )
