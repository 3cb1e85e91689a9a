// cuBLAS loaded at run time (dlopen), so the library builds and loads without it. Only the
// handful of functions used are declared here by hand (no cuBLAS headers are needed):
// their signatures and enum values are stable across cuBLAS 11, 12 and 13.
//
// Row-major GEMM on column-major cuBLAS: a row-major [r, c] matrix is the column-major
// [c, r] matrix with leading dimension c, i.e. its transpose. For y[m, n] = x[m, k] w[n, k]^T:
//   column-major Y' (n x m, ld n) = y^T = w x^T = (W')^T X'
// where W' = w^T is column-major k x n (ld k) and X' = x^T is column-major k x m (ld k). So
//   cublasGemmEx(T, N, m=n, n=m, k, A=w (lda k), B=x (ldb k), C=y (ldc n)).
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <library_types.h> // cudaDataType (part of the CUDA runtime headers)

#include "cuda_common.cuh"

extern "C" {
#include "../core/allocator.h"
#include "../core/device.h"
#include "../core/graph.h"
}

typedef int hrc_blas_status;         // cublasStatus_t; 0 = CUBLAS_STATUS_SUCCESS
typedef void *hrc_blas_handle;       // cublasHandle_t
enum { HRC_OP_N = 0, HRC_OP_T = 1 }; // cublasOperation_t
enum { HRC_COMPUTE_32F = 68 };       // cublasComputeType_t CUBLAS_COMPUTE_32F
enum { HRC_GEMM_DEFAULT = -1 };      // cublasGemmAlgo_t CUBLAS_GEMM_DEFAULT

typedef hrc_blas_status (*fn_create)(hrc_blas_handle *);
typedef hrc_blas_status (*fn_destroy)(hrc_blas_handle);
typedef hrc_blas_status (*fn_set_stream)(hrc_blas_handle, cudaStream_t);
typedef hrc_blas_status (*fn_set_workspace)(hrc_blas_handle, void *, size_t);
typedef hrc_blas_status (*fn_get_version)(hrc_blas_handle, int *);
typedef const char *(*fn_status_string)(hrc_blas_status);
typedef hrc_blas_status (*fn_gemm_ex)(hrc_blas_handle, int transa, int transb, int m, int n, int k, const void *alpha,
                                      const void *A, cudaDataType Atype, int lda, const void *B, cudaDataType Btype,
                                      int ldb, const void *beta, void *C, cudaDataType Ctype, int ldc, int computeType,
                                      int algo);

static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  int tried, ok;
  void *lib;
  char path[512];
  char error[768];
  fn_create create;
  fn_destroy destroy;
  fn_set_stream set_stream;
  fn_set_workspace set_workspace;
  fn_get_version get_version;
  fn_status_string status_string; // optional (cuBLAS >= 11.4)
  fn_gemm_ex gemm_ex;
} B;

// Loads cuBLAS once per process; returns HR_OK or HR_E_UNSUPPORTED with the reason.
static int blas_load(const char *call) {
  pthread_mutex_lock(&blas_lock);
  if (!B.tried) {
    B.tried = 1;
    const char *env = getenv("HEADROOM_CUBLAS");
    const char *names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"};
    char tried[512] = "";
    size_t used = 0;
    if (env && *env) {
      B.lib = dlopen(env, RTLD_NOW | RTLD_LOCAL);
      if (B.lib)
        snprintf(B.path, sizeof B.path, "%s", env);
      else
        snprintf(B.error, sizeof B.error, "HEADROOM_CUBLAS=%s could not be loaded: %s", env, dlerror());
    } else {
      for (size_t i = 0; i < sizeof names / sizeof names[0] && !B.lib; i++) {
        B.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (B.lib)
          snprintf(B.path, sizeof B.path, "%s", names[i]);
        else
          used += (size_t)snprintf(tried + used, sizeof tried - used, "%s%s", i ? ", " : "", names[i]);
        if (used >= sizeof tried) used = sizeof tried - 1;
      }
      if (!B.lib)
        snprintf(B.error, sizeof B.error,
                 "cuBLAS not found (tried %s; set HEADROOM_CUBLAS to its path or add its directory to "
                 "LD_LIBRARY_PATH)",
                 tried);
    }
    if (B.lib) {
      struct {
        const char *name;
        void **fn;
        int optional;
      } want[] = {
          {"cublasCreate_v2", (void **)&B.create, 0},
          {"cublasDestroy_v2", (void **)&B.destroy, 0},
          {"cublasSetStream_v2", (void **)&B.set_stream, 0},
          {"cublasSetWorkspace_v2", (void **)&B.set_workspace, 0},
          {"cublasGemmEx", (void **)&B.gemm_ex, 0},
          {"cublasGetVersion_v2", (void **)&B.get_version, 1},
          {"cublasGetStatusString", (void **)&B.status_string, 1},
      };
      B.ok = 1;
      for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        *want[i].fn = dlsym(B.lib, want[i].name);
        if (!*want[i].fn && !want[i].optional) {
          snprintf(B.error, sizeof B.error, "%s lacks %s (cuBLAS older than 11?)", B.path, want[i].name);
          B.ok = 0;
          break;
        }
      }
    }
  }
  int ok = B.ok;
  pthread_mutex_unlock(&blas_lock);
  if (!ok) return hr_fail(HR_E_UNSUPPORTED, "%s: %s", call, B.error);
  return HR_OK;
}

static int blas_fail(hrc_blas_status s, const char *call, const char *what) {
  const char *text = B.status_string ? B.status_string(s) : "";
  return hr_fail(s == 3 /* CUBLAS_STATUS_ALLOC_FAILED */ ? HR_E_OOM : HR_E_BACKEND,
                 "%s: %s failed: cuBLAS status %d %s", call, what, (int)s, text ? text : "");
}

void hrc_blas_destroy(void *blas) {
  if (B.ok && blas) B.destroy((hrc_blas_handle)blas);
}

int hrc_blas_forget_workspace(void *blas) {
  if (!B.ok || !blas) return HR_OK;
  return B.set_workspace((hrc_blas_handle)blas, NULL, 0) == 0 ? HR_OK : HR_E_BACKEND;
}

int hrc_blas_ready(hrc_state *st, const char *call, uint64_t workspace_bytes) {
  int s = blas_load(call);
  if (s != HR_OK) return s;
  if (!st->blas) {
    hrc_blas_handle h = NULL;
    hrc_blas_status bs = B.create(&h);
    if (bs != 0) return blas_fail(bs, call, "cublasCreate_v2");
    st->blas = h;
    st->ws = st->ws_bytes = 0;
  }
  // Always (re)bind the stream: a reused state may have changed streams. cublasSetStream
  // "unconditionally resets the cuBLAS library workspace back to the default workspace pool"
  // (cuBLAS docs), which cuBLAS would then allocate outside our allocator (and, under capture,
  // inside the graph): re-apply the accounted workspace every time, as PyTorch's
  // getCurrentCUDABlasHandle does.
  hrc_blas_status bs = B.set_stream((hrc_blas_handle)st->blas, st->stream);
  if (bs != 0) return blas_fail(bs, call, "cublasSetStream_v2");
  if (st->ws) {
    bs = B.set_workspace((hrc_blas_handle)st->blas, (void *)(uintptr_t)st->ws, (size_t)st->ws_bytes);
    if (bs != 0) return blas_fail(bs, call, "cublasSetWorkspace_v2 (re-applying the workspace)");
  } else {
    if (workspace_bytes == 0) {
      int major = 0;
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, (int)st->ordinal);
      workspace_bytes = major >= 9 ? (32ull << 20) : (4ull << 20);
    }
    uint64_t ws = 0;
    s = hr_allocator_malloc(st->inst->alloc, workspace_bytes, &ws);
    if (s != HR_OK) return s; // message from the allocator (names hr_alloc sizes)
    bs = B.set_workspace((hrc_blas_handle)st->blas, (void *)(uintptr_t)ws, (size_t)workspace_bytes);
    if (bs != 0) {
      hr_allocator_free(st->inst->alloc, ws);
      return blas_fail(bs, call, "cublasSetWorkspace_v2");
    }
    st->ws = ws;
    st->ws_bytes = workspace_bytes;
  }
  return HR_OK;
}

static cudaDataType data_type(int64_t dtype) {
  return dtype == HR_DTYPE_F16 ? CUDA_R_16F : dtype == HR_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

int hrc_gemm(hrc_state *st, const char *call, int64_t dtype, int64_t ydtype, uint64_t y, uint64_t x, uint64_t w,
             int64_t m, int64_t n, int64_t k, int accumulate) {
  return hrc_gemm_ld(st, call, dtype, ydtype, y, n, x, w, m, n, k, accumulate);
}

int hrc_gemm_ld(hrc_state *st, const char *call, int64_t dtype, int64_t ydtype, uint64_t y, int64_t ldy, uint64_t x,
                uint64_t w, int64_t m, int64_t n, int64_t k, int accumulate) {
  if (m > 0x7fffffff || n > 0x7fffffff || k > 0x7fffffff || ldy > 0x7fffffff)
    return hr_fail(HR_E_UNSUPPORTED, "%s: cuBLAS takes 32-bit sizes (m=%lld n=%lld k=%lld)", call, (long long)m,
                   (long long)n, (long long)k);
  int s = hrc_blas_ready(st, call, 0);
  if (s != HR_OK) return s;
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  // Scalars are float for CUBLAS_COMPUTE_32F whatever the matrix types.
  hrc_blas_status bs =
      B.gemm_ex((hrc_blas_handle)st->blas, HRC_OP_T, HRC_OP_N, (int)n, (int)m, (int)k, &alpha,
                (const void *)(uintptr_t)w, data_type(dtype), (int)k, (const void *)(uintptr_t)x, data_type(dtype),
                (int)k, &beta, (void *)(uintptr_t)y, data_type(ydtype), (int)ldy, HRC_COMPUTE_32F, HRC_GEMM_DEFAULT);
  if (bs != 0) return blas_fail(bs, call, "cublasGemmEx");
  return HR_OK;
}

#define GET(handle, call)                                \
  hr_clear_error();                                      \
  hr_instance *inst = hr_instance_get((handle), (call)); \
  if (!inst) return HR_E_INVALID

extern "C" {

int hr_blas_init(uint64_t dev, uint64_t workspace_bytes) {
  static const char *const CALL = "hr_blas_init";
  GET(dev, CALL);
  if (inst->graph_capture) return hr_graph_refuse(inst, CALL); /* creating the handle/workspace cannot be captured */
  if (workspace_bytes > (1ull << 34))
    return hr_fail(HR_E_INVALID, "%s: workspace_bytes must be <= 16 GiB (got %llu)", CALL, (hr_ull)workspace_bytes);
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  return hrc_blas_ready(st, CALL, workspace_bytes);
}

int hr_blas_info(uint64_t dev, char *buf, int64_t len) {
  static const char *const CALL = "hr_blas_info";
  GET(dev, CALL);
  HR_CHECK_PTR(buf, CALL);
  if (len <= 0) return hr_fail(HR_E_INVALID, "%s: len must be > 0 (got %lld)", CALL, (long long)len);
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  s = blas_load(CALL);
  if (s != HR_OK) return s;
  int version = 0;
  if (B.get_version) {
    hrc_blas_handle h = st->blas;
    int created = 0;
    if (!h && B.create(&h) == 0) created = 1;
    if (h) B.get_version(h, &version);
    if (created) B.destroy(h);
  }
  snprintf(buf, (size_t)len, "%s (version %d)", B.path, version);
  return HR_OK;
}

} // extern "C"
