// cuBLAS is opened at run time: the table resolves on a machine with the CUDA toolkit (no
// GPU needed to load the library), and loading is done once.
#include <gtest/gtest.h>

#include "cublas_api.hpp"

namespace underspec::cuda {
namespace {

TEST(CublasApi, ResolvesEverySymbolOnce) {
  const CublasApi& api = cublas();
  EXPECT_NE(api.create, nullptr);
  EXPECT_NE(api.sgemm_strided_batched, nullptr);
  EXPECT_NE(api.status_string, nullptr);
  EXPECT_EQ(&api, &cublas());
  EXPECT_STREQ(api.status_name(CUBLAS_STATUS_NOT_INITIALIZED), "CUBLAS_STATUS_NOT_INITIALIZED");
}

}  // namespace
}  // namespace underspec::cuda
