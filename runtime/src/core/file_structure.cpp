// file_structure.cpp: the bounded structural walk over a .mob FlatBuffer
// (rules S1-S9 of docs/format-rules.md), a port of formats/reader.py
// `_Verifier`; keep the two in step (same order of checks, same messages).
//
// Steps: (1) size and identifier; (2) the root table's header and its two
// version fields, then the version rule; (3) a walk over every field the
// schema declares (kLayout below, checked against formats/mobconv.fbs by
// tests/test_schema_rules.py): each offset is 4-aligned, in [1, 2^31) and
// lands inside the file; each table has an in-file, 2-aligned vtable of at
// least 4 bytes and a table size that fits; each present field lies inside
// its table and is aligned to its size; each vector fits; each string is
// NUL-terminated and valid UTF-8; and the bytes reached, counting repeats,
// stay within 2 * file size + 1024 (a file whose offsets all point at one
// big table cannot make decoding explode). The FlatBuffers verifier then
// runs as a second check; it accepts everything this walk accepts.
#include "core/file_structure.h"

#include <cstring>

namespace mobrt {

namespace {

enum class Kind : uint8_t { kScalar, kString, kTable, kVector, kStrings, kTables };

struct Field {
  const char* name;
  Kind kind;
  int size;           // scalar size, or vector element size
  const char* table;  // kTable / kTables: the table's name
};

struct TableLayout {
  const char* name;
  Field fields[9];
  int count;
};

#define SC(n, s) {n, Kind::kScalar, s, nullptr}
#define STR(n) {n, Kind::kString, 0, nullptr}
#define TAB(n, t) {n, Kind::kTable, 0, t}
#define VEC(n, s) {n, Kind::kVector, s, nullptr}
#define STRS(n) {n, Kind::kStrings, 0, nullptr}
#define TABS(n, t) {n, Kind::kTables, 0, t}

// One entry per table, fields in declaration (= vtable slot) order.
// BEGIN LAYOUT (parsed by tests/test_schema_rules.py)
const TableLayout kLayout[] = {
    {"Dim", {SC("value", 8), STR("symbol")}, 2},
    {"Quantization", {VEC("scales", 4), VEC("zero_points", 8), SC("axis", 4)}, 3},
    {"Tensor", {STR("name"), SC("dtype", 1), TABS("shape", "Dim"), SC("buffer", 4),
                TAB("quantization", "Quantization"), TAB("compressed", "CompressedData")}, 6},
    {"Buffer", {VEC("data", 1)}, 1},
    {"Attribute", {STR("name"), SC("type", 1), SC("i", 8), SC("f", 4), STR("s"), VEC("ints", 8),
                   VEC("floats", 4), STRS("strings"), SC("tensor", 4)}, 9},
    {"Operator", {SC("type", 4), SC("version", 4), STR("name"), VEC("inputs", 4), VEC("outputs", 4),
                  TABS("attributes", "Attribute")}, 6},
    {"Graph", {STR("name"), TABS("tensors", "Tensor"), TABS("operators", "Operator"), VEC("inputs", 4),
               VEC("outputs", 4)}, 5},
    {"Preprocessing", {VEC("mean", 4), VEC("scale", 4), STR("channel_order")}, 3},
    {"SignatureTensor", {STR("name"), SC("dtype", 1), TABS("shape", "Dim"), STR("layout")}, 4},
    {"Signature", {TABS("inputs", "SignatureTensor"), TABS("outputs", "SignatureTensor"),
                   TAB("preprocessing", "Preprocessing")}, 3},
    {"KeyValue", {STR("key"), STR("value")}, 2},
    {"Metadata", {STR("producer"), STR("converter_version"), STR("source_framework"), STR("source_sha256"),
                  STR("min_runtime_version"), TABS("options", "KeyValue"), TABS("extra", "KeyValue")}, 7},
    {"NamedArray", {STR("name"), SC("dtype", 1), VEC("shape", 8), VEC("data", 1)}, 4},
    {"TestVector", {TABS("inputs", "NamedArray"), TABS("outputs", "NamedArray"), SC("rtol", 4),
                    SC("atol", 4)}, 4},
    {"Model", {SC("version_major", 4), SC("version_minor", 4), TAB("graph", "Graph"), TABS("buffers", "Buffer"),
               TAB("signature", "Signature"), TAB("metadata", "Metadata"), TABS("test_vectors", "TestVector")}, 7},
    {"CompressedData", {SC("kind", 1), SC("values", 4), SC("mask", 4), SC("palette", 4), SC("index_bits", 1)}, 5},
};
// END LAYOUT

#undef SC
#undef STR
#undef TAB
#undef VEC
#undef STRS
#undef TABS

struct Failure {};  // thrown inside the walk, caught by check_file_structure

struct Header {
  int64_t vtable, vsize, tsize;
};

class Walker {
 public:
  Walker(const uint8_t* buf, size_t n) : buf_(buf), n_(static_cast<int64_t>(n)), budget_(2 * static_cast<int64_t>(n) + 1024) {}

  std::string problem;

  [[noreturn]] void fail(const std::string& p) {
    problem = p;
    throw Failure();
  }

  void spend(int64_t nbytes, const std::string& what) {
    budget_ -= nbytes;
    if (budget_ < 0)
      fail(what + " is referenced so many times that the file would decode to more than twice its size");
  }

  uint64_t get(int size, int64_t pos, const std::string& what) {
    if (pos < 0 || pos + size > n_)
      fail(what + " at byte " + std::to_string(pos) + " lies outside the " + std::to_string(n_) + "-byte file");
    uint64_t v = 0;
    for (int i = size - 1; i >= 0; --i) v = (v << 8) | buf_[pos + i];
    return v;
  }
  int64_t get_i32(int64_t pos, const std::string& what) {
    return static_cast<int32_t>(static_cast<uint32_t>(get(4, pos, what)));
  }

  // Follow the uoffset stored at `pos`.
  int64_t target(int64_t pos, const std::string& what) {
    if (pos % 4) fail("misaligned offset to " + what + " at byte " + std::to_string(pos));
    uint64_t off = get(4, pos, "offset to " + what);
    if (off == 0 || off >= (uint64_t(1) << 31))
      fail("offset to " + what + " at byte " + std::to_string(pos) + " is " + std::to_string(off) +
           ", not in [1, 2^31)");
    int64_t t = pos + static_cast<int64_t>(off);
    if (t >= n_) fail("offset to " + what + " at byte " + std::to_string(pos) + " points past the end of the file");
    return t;
  }

  Header table_fields(int64_t pos, const std::string& name) {
    if (pos % 4) fail("misaligned " + name + " table at byte " + std::to_string(pos));
    int64_t vtable = pos - get_i32(pos, name + " table");
    if (vtable % 2) fail("misaligned vtable of " + name + " table at byte " + std::to_string(pos));
    int64_t vsize = static_cast<int64_t>(get(2, vtable, "vtable of " + name + " table"));
    int64_t tsize = static_cast<int64_t>(get(2, vtable + 2, "vtable of " + name + " table"));
    if (vsize < 4 || vsize % 2 || vtable + vsize > n_)
      fail("bad vtable size " + std::to_string(vsize) + " for " + name + " table at byte " + std::to_string(pos));
    if (tsize < 4 || pos + tsize > n_)
      fail(name + " table at byte " + std::to_string(pos) + " (" + std::to_string(tsize) +
           " bytes) runs past the end of the file");
    return {vtable, vsize, tsize};
  }

  // Absolute position of field `slot` of the table at `pos`, or 0 if absent.
  int64_t field_pos(int64_t pos, const std::string& name, const Field& f, int slot, const Header& h, int size) {
    if (4 + 2 * slot >= h.vsize) return 0;
    int64_t off = buf_[h.vtable + 4 + 2 * slot] | (buf_[h.vtable + 5 + 2 * slot] << 8);
    if (off == 0) return 0;
    if (off < 4 || off + size > h.tsize)
      fail("field '" + std::string(f.name) + "' of " + name + " table at byte " + std::to_string(pos) +
           " lies outside the table");
    if ((pos + off) % size)
      fail("misaligned field '" + std::string(f.name) + "' of " + name + " table at byte " + std::to_string(pos));
    return pos + off;
  }

  void table(int64_t pos, const char* name) {
    Header h = table_fields(pos, name);
    spend(h.tsize, std::string(name) + " table at byte " + std::to_string(pos));
    for (const TableLayout& t : kLayout) {
      if (std::strcmp(t.name, name) != 0) continue;
      for (int slot = 0; slot < t.count; ++slot) {
        const Field& f = t.fields[slot];
        int size = f.kind == Kind::kScalar ? f.size : 4;
        int64_t fpos = field_pos(pos, name, f, slot, h, size);
        if (fpos && f.kind != Kind::kScalar) {
          std::string what = std::string(name) + "." + f.name;
          reference(target(fpos, what), f, what);
        }
      }
    }
  }

  void reference(int64_t t, const Field& f, const std::string& what) {
    switch (f.kind) {
      case Kind::kTable: table(t, f.table); return;
      case Kind::kString: string(t, what); return;
      default: break;
    }
    int elem = f.kind == Kind::kVector ? f.size : 4;
    int64_t length = vector(t, elem, what);
    if (f.kind == Kind::kStrings || f.kind == Kind::kTables) {
      for (int64_t k = 0; k < length; ++k) {
        int64_t e = t + 4 + 4 * k;
        if (f.kind == Kind::kStrings)
          string(target(e, what), what);
        else
          table(target(e, what), f.table);
      }
    }
  }

  int64_t vector(int64_t pos, int elem, const std::string& what) {
    if (pos % 4) fail("misaligned vector " + what + " at byte " + std::to_string(pos));
    int64_t length = static_cast<int64_t>(get(4, pos, "length of " + what));
    if (length > (n_ - pos - 4) / elem)
      fail("vector " + what + " at byte " + std::to_string(pos) + " (" + std::to_string(length) +
           " elements) runs past the end of the file");
    spend(4 + length * elem, "vector " + what + " at byte " + std::to_string(pos));
    return length;
  }

  void string(int64_t pos, const std::string& what) {
    int64_t length = vector(pos, 1, what);
    int64_t end = pos + 4 + length;
    if (end >= n_ || buf_[end] != 0) fail("string " + what + " at byte " + std::to_string(pos) + " is not terminated");
    if (!valid_utf8(buf_ + pos + 4, static_cast<size_t>(length)))
      fail("string " + what + " at byte " + std::to_string(pos) + " is not valid UTF-8");
  }

  const uint8_t* buf_;
  int64_t n_;
  int64_t budget_;
};

const Field kVersionField = {"version_major", Kind::kScalar, 4, nullptr};
const Field kMinorField = {"version_minor", Kind::kScalar, 4, nullptr};

}  // namespace

bool valid_utf8(const uint8_t* s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) { ++i; continue; }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = 3;
    else if (c == 0xED) { len = 3; hi = 0x9F; }  // no surrogates
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) { len = 4; hi = 0x8F; }  // <= U+10FFFF
    else return false;
    if (i + len > n) return false;
    if (s[i + 1] < lo || s[i + 1] > hi) return false;
    for (size_t k = 2; k < len; ++k)
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return false;
    i += len;
  }
  return true;
}

Status check_file_structure(const uint8_t* buf, size_t size, const std::string& source) {
  auto error = [&](const std::string& m) { return Status::Error(StatusCode::kInvalidModel, source + ": " + m); };
  if (size == 0) return error("empty file, not a mobconv model");
  if (size < 8 || buf[4] != 'M' || buf[5] != 'O' || buf[6] != 'B' || buf[7] != '1')
    return error("not a mobconv model file (file identifier is not \"MOB1\")");
  if (size < kMinFileSize) return error("truncated model file (" + std::to_string(size) + " bytes)");
  if (size >= kMaxFileSize) return error("file is larger than 2 GiB");
  Walker w(buf, size);
  try {
    int64_t root = w.target(0, "root table");
    Header h = w.table_fields(root, "Model");
    int64_t p0 = w.field_pos(root, "Model", kVersionField, 0, h, 4);
    int64_t p1 = w.field_pos(root, "Model", kMinorField, 1, h, 4);
    uint64_t major = p0 ? w.get(4, p0, "version") : 0, minor = p1 ? w.get(4, p1, "version") : 0;
    std::string v = std::to_string(major) + "." + std::to_string(minor);
    if (major > 1) return error("model format version " + v + " is newer than this runtime supports (1.x); upgrade the runtime");
    if (major < 1) return error("model format version " + v + " is invalid (versions start at 1.0)");
    w.table(root, "Model");
  } catch (const Failure&) {
    return error("corrupt model file (" + w.problem + ")");
  }
  return Status::Ok();
}

}  // namespace mobrt
