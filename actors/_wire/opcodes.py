"""The wire format: what a frame is, and the opcodes of its instructions.

One msgpack value per message (`msgspec`, never `pickle`). A message that is a msgpack scalar
(`None`, `bool`, a 64-bit `int`, `float`, `str`), a tuple of them or a dict of `str` to them is
that msgpack value (array, map). Any other atomic value is an extension (`leaves.py`). Anything
else is `Ext(STREAM, tokens)`: a flat msgpack array read in order by a stack machine.

A token is a scalar, an extension, a map of `str` to scalars (a dict, complete), or an
instruction: an array of scalars whose first item is an opcode (below). Instructions either
make a complete value from their own items (`LIST_FLAT` and the other `*_FLAT`, `REF`,
`MOVED`, `SHARED`, `ENUM`, `FLAG`, `MISSING`), define a class (`CLASS`), or open a container
that takes the values of the next tokens as its children. So msgpack nests at most two deep,
decoding never recurses, and msgspec decodes against a fixed type: a map with keys other than
`str` never reaches a dict (no hash flooding inside msgspec).

Every value a container instruction, a map token, a `SHARED` instruction or a BYTEARRAY or
BUFFER extension makes takes the next id (from 0) as the decoder meets it, in token order;
`REF id` is that value again, so shared references and cycles come out as structured clone
makes them. Immutable containers
(tuple, frozenset, named tuple, frozen fields class) take their id when opened but exist only
once closed; as in structured clone, a cycle back to one that is still open encodes it again
inside, and the outer one's instruction then ends with the inner one's id (it *is* that one).
"""

from __future__ import annotations

from typing import Final

# Opcodes: the first item of an instruction. `n` is a count of children (tokens that follow);
# `alias` (optional) the id of the value an immutable container turned out to be; `class` the
# index of a class a CLASS token defined (in order, from 0).
REF: Final = 0  # [REF, id]
MOVED: Final = 1  # [MOVED, i]: the i-th transferred object
MISSING: Final = 2  # [MISSING]: an attrs slot never set (only as a field)
CLASS: Final = 3  # [CLASS, kind, module, qualname, *field names]: defines the next class
ENUM: Final = 4  # [ENUM, class, member name]
FLAG: Final = 5  # [FLAG, class, int value]: a Flag member that is not named (A|B)
LIST: Final = 6  # [LIST, n]
LIST_FLAT: Final = 7  # [LIST_FLAT, *scalars]
TUPLE: Final = 8  # [TUPLE, n, alias?]
TUPLE_FLAT: Final = 9  # [TUPLE_FLAT, *scalars]
DICT: Final = 10  # [DICT, n]: n pairs of children, key then value
DICT_STR: Final = 11  # [DICT_STR, n]: a map (the dict, in order, None where a value follows),
#                       then n pairs: a str key of the map and its value
SET: Final = 12  # [SET, n]
SET_FLAT: Final = 13
FROZENSET: Final = 14  # [FROZENSET, n, alias?]
FROZENSET_FLAT: Final = 15
OBJECT: Final = 16  # [OBJECT, class]: one child per field
OBJECT_FLAT: Final = 17  # [OBJECT_FLAT, class, *scalars]
FROZEN: Final = 18  # [FROZEN, class, alias?]: one child per field
FROZEN_FLAT: Final = 19
NAMEDTUPLE: Final = 20  # [NAMEDTUPLE, class, alias?]: one child per field
NAMEDTUPLE_FLAT: Final = 21
EXCEPTION: Final = 22  # [EXCEPTION, class, n, early, *scalar args]: children are the args
#   (a tuple), n pairs of attribute name and value (`__dict__`, `__notes__` too), then one per
#   field of an attrs or dataclass exception. `early` is 1 when a reference back to the
#   exception sits in its args: it is then made at once from the scalar args (None for others).
SHARED: Final = 23  # [SHARED, i]: an ArrayBuffer copied into the message whose bytes travel
#   beside it (the i-th shared buffer: a memfd sent with the frame), not in it; it takes an id
