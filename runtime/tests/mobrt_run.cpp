// mobrt_run: load a .mob, run it once and write the outputs.
//   mobrt_run model.mob [--threads N] [--inputs DIR] [--outputs DIR] [--isa scalar|avx2|avx_vnni|avx512|avx512_vnni|neon|neon_dot|neon_fp16|any] [--allow-fp16]
// --allow-fp16 sets mobrt_options_set_allow_fp16 (fp16 compute kernels where the CPU has them).
// Inputs are read from DIR/<index>.bin (raw little-endian bytes of the
// declared shape; zeros when absent); outputs are written to DIR/<index>.bin
// and their shapes printed. Exit status: 0 on success, else the mobrt_status.
//
// Batch mode (many small models in one process: the aarch64 tests run this
// under qemu-aarch64, whose start-up is slow):
//   mobrt_run --batch DIR [--threads N] [--isa NAME] [--allow-fp16] [--resume]
// runs every sub-directory CASE of DIR (sorted by name) that holds
// CASE/model.mob, reading input i from CASE/inputs/<i>.npy or CASE/inputs/<i>.bin
// (.npy: little-endian, C order, matching dtype; .bin: raw bytes; an input with
// symbolic dims is first resized to the .npy file's shape), and writes
// CASE/outputs_<isa>[_t<N> when N > 1][_fp16 with --allow-fp16]/<i>.npy plus a `status` file there:
//   line 1 "ok", or "error <STATUS_NAME>: <message>"
//   then, when ok, one "kernel <op_type> <kernel_name>" line per executed op.
// stdout gets "BEGIN <case>" (flushed) before each case and "END <case> ok|error"
// after it, so a driver can name the case a crash happened in; --resume skips
// cases whose status file already exists. Exit status: 0 when every case ran
// (errors included, they are in the status files), 2 on usage/IO problems.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "mobrt.h"

namespace fs = std::filesystem;

static bool read_file(const std::string& path, std::vector<char>* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->insert(out->end(), buf, buf + n);
  std::fclose(f);
  return true;
}

static bool parse_isa(const std::string& name, mobrt_isa* isa) {
  if (name.empty() || name == "any" || name == "best") *isa = MOBRT_ISA_ANY;
  else if (name == "scalar") *isa = MOBRT_ISA_SCALAR;
  else if (name == "avx2") *isa = MOBRT_ISA_AVX2;
  else if (name == "avx512") *isa = MOBRT_ISA_AVX512;
  else if (name == "neon") *isa = MOBRT_ISA_NEON;
  else if (name == "avx_vnni") *isa = MOBRT_ISA_AVX_VNNI;
  else if (name == "avx512_vnni") *isa = MOBRT_ISA_AVX512_VNNI;
  else if (name == "neon_dot") *isa = MOBRT_ISA_NEON_DOT;
  else if (name == "neon_fp16") *isa = MOBRT_ISA_NEON_FP16;
  else return false;
  return true;
}

// ---- .npy (format 1.0) ---------------------------------------------------------

static const char* npy_descr(mobrt_dtype dt) {
  switch (dt) {
    case MOBRT_FLOAT32: return "<f4";
    case MOBRT_FLOAT16: return "<f2";
    case MOBRT_BFLOAT16: return "<u2";  // raw bits: numpy has no bfloat16
    case MOBRT_INT8: return "|i1";
    case MOBRT_UINT8: return "|u1";
    case MOBRT_INT16: return "<i2";
    case MOBRT_INT32: return "<i4";
    case MOBRT_INT64: return "<i8";
    case MOBRT_BOOL: return "|b1";
  }
  return "|u1";
}

static bool write_npy(const std::string& path, mobrt_dtype dt, int rank, const int64_t* dims, const void* data,
                      size_t bytes) {
  std::string shape = "(";
  for (int d = 0; d < rank; ++d) shape += std::to_string(static_cast<long long>(dims[d])) + ",";
  if (rank > 1) shape.pop_back();
  shape += ")";
  std::string header = std::string("{'descr': '") + npy_descr(dt) + "', 'fortran_order': False, 'shape': " + shape +
                       ", }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  const uint16_t hlen = static_cast<uint16_t>(header.size());
  const unsigned char len_le[2] = {static_cast<unsigned char>(hlen & 0xff), static_cast<unsigned char>(hlen >> 8)};
  bool ok = std::fwrite(magic, 1, 8, f) == 8 && std::fwrite(len_le, 1, 2, f) == 2 &&
            std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
            (bytes == 0 || std::fwrite(data, 1, bytes, f) == bytes);
  return std::fclose(f) == 0 && ok;
}

// Payload of a .npy file (header skipped; the caller checks the byte size).
static bool npy_payload(const std::vector<char>& file, const char** data, size_t* size) {
  if (file.size() < 10 || std::memcmp(file.data(), "\x93NUMPY", 6) != 0) return false;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(file.data());
  size_t off;
  if (p[6] == 1) {
    off = 10 + (p[8] | (p[9] << 8));
  } else {
    if (file.size() < 12) return false;
    off = 12 + (p[8] | (p[9] << 8) | (static_cast<size_t>(p[10]) << 16) | (static_cast<size_t>(p[11]) << 24));
  }
  if (off > file.size()) return false;
  *data = file.data() + off;
  *size = file.size() - off;
  return true;
}

// Shape of a .npy file from its header's 'shape': (d0, d1, ...) entry.
static bool npy_shape(const std::vector<char>& file, std::vector<int64_t>* dims) {
  if (file.size() < 10) return false;
  const std::string head(file.data(), std::min<size_t>(file.size(), 4096));
  size_t p = head.find("'shape':");
  if (p == std::string::npos) return false;
  p = head.find('(', p);
  const size_t end = head.find(')', p);
  if (p == std::string::npos || end == std::string::npos) return false;
  dims->clear();
  for (size_t i = p + 1; i < end;) {
    while (i < end && (head[i] == ' ' || head[i] == ',')) ++i;
    if (i >= end) break;
    char* stop = nullptr;
    const long long v = std::strtoll(head.c_str() + i, &stop, 10);
    if (stop == head.c_str() + i) return false;
    dims->push_back(v);
    i = static_cast<size_t>(stop - head.c_str());
  }
  return true;
}

// ---- batch mode -------------------------------------------------------------------

static std::string run_case(const fs::path& dir, const fs::path& out, mobrt_isa isa, int threads, bool allow_fp16) {
  mobrt_model* model = nullptr;
  mobrt_status s = mobrt_model_create_from_file((dir / "model.mob").c_str(), &model);
  if (s != MOBRT_OK) return std::string("error ") + mobrt_status_name(s) + ": " + mobrt_global_last_error();
  mobrt_options* opts = mobrt_options_create();
  mobrt_options_set_num_threads(opts, threads);
  mobrt_options_set_max_isa(opts, isa);
  mobrt_options_set_allow_fp16(opts, allow_fp16 ? 1 : 0);
  mobrt_options_set_profiling(opts, 1);
  mobrt_interpreter* it = nullptr;
  s = mobrt_interpreter_create(model, opts, &it);
  mobrt_options_delete(opts);
  if (s != MOBRT_OK) {
    std::string msg = std::string("error ") + mobrt_status_name(s) + ": " + mobrt_global_last_error();
    mobrt_model_delete(model);
    return msg;
  }
  std::string result;
  auto fail = [&](mobrt_status st, const std::string& what) {
    result = std::string("error ") + mobrt_status_name(st) + ": " + what;
  };
  // Read every input, resize the symbolic ones (all before any set_input: a resize re-plans),
  // then copy the data in.
  const int n_in = mobrt_interpreter_num_inputs(it);
  std::vector<std::vector<char>> files(n_in);
  std::vector<const char*> datas(n_in, nullptr);
  std::vector<size_t> sizes(n_in, 0);
  std::vector<bool> given(n_in, false);
  for (int i = 0; i < n_in && result.empty(); ++i) {
    std::vector<char>& file = files[i];
    const std::string stem = (dir / "inputs" / std::to_string(i)).string();
    if (read_file(stem + ".npy", &file)) {
      if (!npy_payload(file, &datas[i], &sizes[i])) {
        fail(MOBRT_INVALID_ARGUMENT, stem + ".npy: not a .npy file");
        break;
      }
      mobrt_dtype dt;
      int rank = 0;
      int64_t dims[MOBRT_MAX_RANK];
      std::vector<int64_t> shape;
      if (mobrt_interpreter_input_info(it, i, &dt, &rank, dims) == MOBRT_OK &&
          std::find(dims, dims + rank, int64_t{-1}) != dims + rank && npy_shape(file, &shape)) {
        s = mobrt_interpreter_resize_input(it, i, static_cast<int>(shape.size()), shape.data());
        if (s != MOBRT_OK)
          fail(s, std::string("resize input ") + std::to_string(i) + ": " + mobrt_interpreter_last_error(it));
      }
      given[i] = true;
    } else if (read_file(stem + ".bin", &file)) {
      datas[i] = file.data();
      sizes[i] = file.size();
      given[i] = true;
    }  // else: zeros
  }
  for (int i = 0; i < n_in && result.empty(); ++i) {
    if (!given[i]) continue;
    s = mobrt_interpreter_set_input(it, i, datas[i], sizes[i]);
    if (s != MOBRT_OK) fail(s, std::string("input ") + std::to_string(i) + ": " + mobrt_interpreter_last_error(it));
  }
  if (result.empty()) {
    s = mobrt_interpreter_invoke(it);
    if (s != MOBRT_OK) fail(s, mobrt_interpreter_last_error(it));
  }
  if (result.empty()) {
    for (int i = 0; i < mobrt_interpreter_num_outputs(it); ++i) {
      mobrt_dtype dt;
      int rank;
      int64_t dims[MOBRT_MAX_RANK];
      mobrt_interpreter_output_info(it, i, &dt, &rank, dims);
      const std::string path = (out / (std::to_string(i) + ".npy")).string();
      if (!write_npy(path, dt, rank, dims, mobrt_interpreter_output_data(it, i),
                     mobrt_interpreter_output_size(it, i))) {
        fail(MOBRT_IO_ERROR, "cannot write " + path);
        break;
      }
    }
  }
  if (result.empty()) {
    result = "ok";
    for (int k = 0; k < mobrt_interpreter_profile_count(it); ++k) {
      mobrt_profile_entry e;
      if (mobrt_interpreter_profile_entry(it, k, &e) == MOBRT_OK)
        result += std::string("\nkernel ") + (e.op_type ? e.op_type : "?") + " " + (e.kernel ? e.kernel : "?");
    }
  }
  mobrt_interpreter_delete(it);
  mobrt_model_delete(model);
  return result;
}

static int run_batch(const std::string& root, const std::string& isa_name, int threads, bool allow_fp16, bool resume) {
  mobrt_isa isa;
  if (!parse_isa(isa_name, &isa)) {
    std::fprintf(stderr, "unknown --isa %s (scalar|avx2|avx_vnni|avx512|avx512_vnni|neon|neon_dot|neon_fp16|any)\n", isa_name.c_str());
    return 2;
  }
  std::error_code ec;
  std::vector<fs::path> cases;
  for (const auto& entry : fs::directory_iterator(root, ec))
    if (entry.is_directory() && fs::exists(entry.path() / "model.mob")) cases.push_back(entry.path());
  if (ec) {
    std::fprintf(stderr, "cannot list %s: %s\n", root.c_str(), ec.message().c_str());
    return 2;
  }
  std::sort(cases.begin(), cases.end());
  std::string out_name = "outputs_" + (isa_name.empty() ? std::string("any") : isa_name);
  if (threads > 1) out_name += "_t" + std::to_string(threads);
  if (allow_fp16) out_name += "_fp16";
  int n_ok = 0, n_err = 0;
  for (const fs::path& dir : cases) {
    const fs::path out = dir / out_name;
    if (resume && fs::exists(out / "status")) continue;
    fs::create_directories(out, ec);
    const std::string name = dir.filename().string();
    std::printf("BEGIN %s\n", name.c_str());
    std::fflush(stdout);
    const std::string status = run_case(dir, out, isa, threads, allow_fp16);
    const bool ok = status.compare(0, 2, "ok") == 0;
    FILE* f = std::fopen((out / "status").c_str(), "wb");
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", (out / "status").c_str());
      return 2;
    }
    std::fwrite(status.data(), 1, status.size(), f);
    std::fputc('\n', f);
    std::fclose(f);
    std::printf("END %s %s\n", name.c_str(), ok ? "ok" : "error");
    std::fflush(stdout);
    (ok ? n_ok : n_err)++;
  }
  std::printf("batch: %d ok, %d error\n", n_ok, n_err);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s model.mob [--threads N] [--inputs DIR] [--outputs DIR] [--isa NAME] [--allow-fp16]\n"
                 "       %s --batch DIR [--threads N] [--isa NAME] [--allow-fp16] [--resume]\n",
                 argv[0], argv[0]);
    return 2;
  }
  int threads = 1;
  bool resume = false, allow_fp16 = false;
  std::string in_dir, out_dir, isa, batch;
  int first = 2;
  if (!std::strcmp(argv[1], "--batch")) {
    if (argc < 3) {
      std::fprintf(stderr, "--batch needs a directory\n");
      return 2;
    }
    batch = argv[2];
    first = 3;
  }
  for (int i = first; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--resume")) {
      resume = true;
      continue;
    }
    if (!std::strcmp(argv[i], "--allow-fp16")) {
      allow_fp16 = true;
      continue;
    }
    if (i + 1 >= argc) break;
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--inputs")) in_dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--outputs")) out_dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--isa")) isa = argv[i + 1];
    ++i;
  }
  if (!batch.empty()) return run_batch(batch, isa, threads, allow_fp16, resume);

  mobrt_model* model = nullptr;
  mobrt_status s = mobrt_model_create_from_file(argv[1], &model);
  if (s != MOBRT_OK) {
    std::fprintf(stderr, "%s: %s\n", mobrt_status_name(s), mobrt_global_last_error());
    return s;
  }
  mobrt_options* opts = mobrt_options_create();
  mobrt_options_set_num_threads(opts, threads);
  mobrt_isa max_isa = MOBRT_ISA_ANY;
  if (!parse_isa(isa, &max_isa)) std::fprintf(stderr, "unknown --isa %s, using the best available\n", isa.c_str());
  mobrt_options_set_max_isa(opts, max_isa);
  mobrt_options_set_allow_fp16(opts, allow_fp16 ? 1 : 0);
  mobrt_interpreter* it = nullptr;
  s = mobrt_interpreter_create(model, opts, &it);
  mobrt_options_delete(opts);
  if (s != MOBRT_OK) {
    std::fprintf(stderr, "%s: %s\n", mobrt_status_name(s), mobrt_global_last_error());
    mobrt_model_delete(model);
    return s;
  }
  for (int i = 0; i < mobrt_interpreter_num_inputs(it); ++i) {
    std::vector<char> data;
    if (!in_dir.empty() && read_file(in_dir + "/" + std::to_string(i) + ".bin", &data)) {
      s = mobrt_interpreter_set_input(it, i, data.data(), data.size());
      if (s != MOBRT_OK) {
        std::fprintf(stderr, "%s: %s\n", mobrt_status_name(s), mobrt_interpreter_last_error(it));
        return s;
      }
    }
  }
  s = mobrt_interpreter_invoke(it);
  if (s != MOBRT_OK) {
    std::fprintf(stderr, "%s: %s\n", mobrt_status_name(s), mobrt_interpreter_last_error(it));
    mobrt_interpreter_delete(it);
    mobrt_model_delete(model);
    return s;
  }
  for (int i = 0; i < mobrt_interpreter_num_outputs(it); ++i) {
    mobrt_dtype dt;
    int rank;
    int64_t dims[MOBRT_MAX_RANK];
    mobrt_interpreter_output_info(it, i, &dt, &rank, dims);
    std::printf("%s dtype=%d shape=(", mobrt_interpreter_output_name(it, i), static_cast<int>(dt));
    for (int d = 0; d < rank; ++d) std::printf("%s%lld", d ? "," : "", static_cast<long long>(dims[d]));
    std::printf(")\n");
    if (!out_dir.empty()) {
      std::string path = out_dir + "/" + std::to_string(i) + ".bin";
      FILE* f = std::fopen(path.c_str(), "wb");
      if (f) {
        std::fwrite(mobrt_interpreter_output_data(it, i), 1, mobrt_interpreter_output_size(it, i), f);
        std::fclose(f);
      }
    }
  }
  std::printf("arena_bytes=%zu activation_bytes=%zu\n", mobrt_interpreter_arena_bytes(it),
              mobrt_interpreter_activation_bytes(it));
  mobrt_interpreter_delete(it);
  mobrt_model_delete(model);
  return 0;
}
