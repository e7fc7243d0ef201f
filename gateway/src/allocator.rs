//! The process's memory allocator: mimalloc instead of glibc's malloc. A
//! vendor poll builds and drops thousands of small values (JSON rows, sqlx
//! rows, strings) across the runtime's threads; under glibc, malloc, free and
//! their arena locks took about a fifth of the gateway's CPU in the
//! accounting-poll profile (BENCHMARKS.md, issue 11). Declared in the library,
//! so the binary, the tests and the benchmarks all run on it.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
