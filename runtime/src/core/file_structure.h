// file_structure.h: the structural rules of docs/format-rules.md (S1-S9),
// checked before any generated accessor touches the bytes. A line-by-line
// port of formats/reader.py `_Verifier` with the same messages, so the
// Python reader and this runtime accept exactly the same files
// (tests/test_format_rules_differential.py feeds both the same corpus).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/kernel.h"

namespace mobrt {

// Smallest file: root offset, identifier, a 4-byte vtable and a table.
constexpr size_t kMinFileSize = 16;
// Largest file a FlatBuffer can address (2^31 - 1 bytes).
constexpr size_t kMaxFileSize = 0x7fffffffu;

// Checks identifier, size, version and the bounded walk over every table,
// vector and string the schema reaches (offsets, lengths, alignment, UTF-8,
// the decode budget). Messages are "<source>: <problem>".
Status check_file_structure(const uint8_t* buf, size_t size, const std::string& source);

// Is [s, s + n) well-formed UTF-8 (what Python's strict decoder accepts)?
bool valid_utf8(const uint8_t* s, size_t n);

}  // namespace mobrt
