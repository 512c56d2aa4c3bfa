#ifndef PISSA_CMPI_SHIM_H
#define PISSA_CMPI_SHIM_H
// OpenMPI's C interface (Debian libopenmpi-dev). MPI_COMM_WORLD, the datatypes and the
// operations are macros over addresses of library globals, which Swift cannot import:
// these inline functions hand them over.
#include <mpi.h>

static inline MPI_Comm cmpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype cmpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype cmpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype cmpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype cmpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Op cmpi_op_max(void) { return MPI_MAX; }
static inline int cmpi_success(void) { return MPI_SUCCESS; }
static inline int cmpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline void *cmpi_in_place(void) { return MPI_IN_PLACE; }

#endif
