// mobrt_run: load a .mob, run it once and write the outputs.
//   mobrt_run model.mob [--threads N] [--inputs DIR] [--outputs DIR] [--isa scalar|avx2|avx512|neon]
// Inputs are read from DIR/<index>.bin (raw little-endian bytes of the
// declared shape; zeros when absent); outputs are written to DIR/<index>.bin
// and their shapes printed. Exit status: 0 on success, else the mobrt_status.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "mobrt.h"

static bool read_file(const std::string& path, std::vector<char>* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->insert(out->end(), buf, buf + n);
  std::fclose(f);
  return true;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s model.mob [--threads N] [--inputs DIR] [--outputs DIR] [--isa NAME]\n", argv[0]);
    return 2;
  }
  int threads = 1;
  std::string in_dir, out_dir, isa;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--inputs")) in_dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--outputs")) out_dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--isa")) isa = argv[i + 1];
  }
  mobrt_model* model = nullptr;
  mobrt_status s = mobrt_model_create_from_file(argv[1], &model);
  if (s != MOBRT_OK) {
    std::fprintf(stderr, "%s: %s\n", mobrt_status_name(s), mobrt_global_last_error());
    return s;
  }
  mobrt_options* opts = mobrt_options_create();
  mobrt_options_set_num_threads(opts, threads);
  if (isa == "scalar") mobrt_options_set_max_isa(opts, MOBRT_ISA_SCALAR);
  mobrt_interpreter* it = nullptr;
  s = mobrt_interpreter_create(model, opts, &it);
  mobrt_options_delete(opts);
  if (s != MOBRT_OK) {
    std::fprintf(stderr, "%s: %s\n", mobrt_status_name(s), mobrt_global_last_error());
    mobrt_model_delete(model);
    return s;
  }
  for (int i = 0; i < mobrt_interpreter_num_inputs(it); ++i) {
    void* dst = mobrt_interpreter_input_data(it, i);
    mobrt_dtype dt;
    int rank;
    int64_t dims[MOBRT_MAX_RANK];
    mobrt_interpreter_input_info(it, i, &dt, &rank, dims);
    std::vector<char> data;
    if (!in_dir.empty() && read_file(in_dir + "/" + std::to_string(i) + ".bin", &data)) {
      s = mobrt_interpreter_set_input(it, i, data.data(), data.size());
      if (s != MOBRT_OK) {
        std::fprintf(stderr, "%s: %s\n", mobrt_status_name(s), mobrt_interpreter_last_error(it));
        return s;
      }
    } else if (dst) {
      (void)dst;
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
