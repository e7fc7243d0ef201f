//! The process's memory allocator: jemalloc (`tikv-jemallocator`), for every
//! binary that links the gateway (`scopegate serve`, its tests and its
//! benchmarks alike, so the benchmarks measure what runs). A request allocates
//! and frees many small objects across the runtime's threads and sqlx's
//! per-connection threads (rows, JSON values, the outbound record's lists);
//! with glibc's allocator, `malloc`, `free` and their consolidation took about
//! a fifth of a poll's CPU samples, and the gateway served about a quarter
//! fewer polls (BENCHMARKS.md §13). mimalloc served as many, but its
//! per-thread heaps took the 1,000-firm tenancy bench's peak RSS (one sqlx
//! thread per open connection, 260 threads) from 58 MB to 241 MB; jemalloc's
//! to 76 MB.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
