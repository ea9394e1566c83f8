// Choosing the CPU backend's instruction-set level (cpu_kernels.hpp).
#include "underspec/backends/cpu_kernels.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace underspec {

// Defined by src/backends/cpu/isa/cpu_kernels_isa.cpp, compiled once per level.
namespace cpu_isa_portable {
extern const CpuKernels kernels;
}
#if defined(UNDERSPEC_CPU_X86_LEVELS)
namespace cpu_isa_avx2 {
extern const CpuKernels kernels;
}
namespace cpu_isa_avx512 {
extern const CpuKernels kernels;
}
#endif

namespace {

constexpr CpuIsa kAllIsas[] = {CpuIsa::avx512, CpuIsa::avx2, CpuIsa::portable};

std::string list(const std::vector<CpuIsa>& isas) {
  std::string s;
  for (const CpuIsa isa : isas) s.append(s.empty() ? "" : ", ").append(isa_name(isa));
  return s;
}

bool contains(const std::vector<CpuIsa>& isas, CpuIsa isa) {
  return std::find(isas.begin(), isas.end(), isa) != isas.end();
}

const CpuKernels& kernels_of(CpuIsa isa) {
#if defined(UNDERSPEC_CPU_X86_LEVELS)
  if (isa == CpuIsa::avx512) return cpu_isa_avx512::kernels;
  if (isa == CpuIsa::avx2) return cpu_isa_avx2::kernels;
#endif
  (void)isa;
  return cpu_isa_portable::kernels;
}

// The choice made once for the process: the kernels, or why there are none.
struct Choice {
  const CpuKernels* kernels = nullptr;
  std::string how;  // "auto" or "UNDERSPEC_CPU_KERNELS=avx2"
  std::string error;
  bool unknown = false;  // the error is CpuKernelsUnknown
};

const Choice& choice() {
  static const Choice c = [] {
    Choice out;
    const char* request = std::getenv(kCpuKernelsVariable);
    const bool automatic = request == nullptr || *request == '\0' || std::strcmp(request, "auto") == 0;
    out.how = automatic ? std::string("auto") : std::string(kCpuKernelsVariable).append("=").append(request);
    try {
      out.kernels = &kernels_of(choose_cpu_isa(request, supported_cpu_isas()));
    } catch (const CpuKernelsError& e) {
      out.error = e.what();
      out.unknown = dynamic_cast<const CpuKernelsUnknown*>(&e) != nullptr;
    }
    return out;
  }();
  return c;
}

}  // namespace

const char* isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::avx512:
      return "avx512";
    case CpuIsa::avx2:
      return "avx2";
    case CpuIsa::portable:
      break;
  }
  return "portable";
}

std::vector<CpuIsa> supported_cpu_isas() {
  std::vector<CpuIsa> out;
#if defined(UNDERSPEC_CPU_X86_LEVELS)
  // libgcc's answers include the OS's support (XCR0) for the ymm / zmm state.
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    out.push_back(CpuIsa::avx512);
  if (avx2) out.push_back(CpuIsa::avx2);
#endif
  out.push_back(CpuIsa::portable);
  return out;
}

CpuIsa choose_cpu_isa(const char* request, const std::vector<CpuIsa>& supported) {
  if (request == nullptr || *request == '\0' || std::strcmp(request, "auto") == 0) return supported.front();
  const std::string asked = std::string(kCpuKernelsVariable).append("=").append(request);
  for (const CpuIsa isa : kAllIsas) {
    // Also the name --version and summary.json show ("avx2+fma"), so it can be pasted back.
    if (std::strcmp(request, isa_name(isa)) != 0 && std::strcmp(request, kernels_of(isa).name) != 0) continue;
    if (contains(supported, isa)) return isa;
#if defined(UNDERSPEC_CPU_X86_LEVELS)
    const std::string why = std::string("this CPU cannot run the ").append(isa_name(isa)).append(" kernels");
#else
    const std::string why = std::string("this build has no ").append(isa_name(isa)).append(" kernels (x86-64 only)");
#endif
    throw CpuKernelsError(asked + ": " + why + " (it supports: " + list(supported) + "); unset " + kCpuKernelsVariable +
                          " or set it to auto");
  }
  throw CpuKernelsUnknown(asked + ": unknown kernels; expected auto, avx512, avx2 or portable (this CPU supports: " +
                          list(supported) + ")");
}

const CpuKernels& cpu_kernels(CpuIsa isa) {
  const std::vector<CpuIsa> supported = supported_cpu_isas();
  if (!contains(supported, isa))
    throw CpuKernelsError(std::string("the ") + isa_name(isa) +
                          " CPU kernels are not supported here (supported: " + list(supported) + ")");
  return kernels_of(isa);
}

const CpuKernels& active_cpu_kernels() {
  const Choice& c = choice();
  if (!c.kernels && c.unknown) throw CpuKernelsUnknown(c.error);
  if (!c.kernels) throw CpuKernelsError(c.error);
  return *c.kernels;
}

std::string cpu_kernels_description(bool list_supported) {
  const Choice& c = choice();
  if (!c.kernels) return std::string("unusable: ").append(c.error);
  std::string text = std::string(c.kernels->name).append(" (").append(c.how);
  if (list_supported) text.append("; this CPU supports ").append(list(supported_cpu_isas()));
  return text.append(")");
}

}  // namespace underspec
