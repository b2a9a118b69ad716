// Clang thread-safety annotations (-Wthread-safety): which lock guards which
// data, and which locks a function needs, takes or gives back. Under other
// compilers they expand to nothing.
//
// The analysis is intra-procedural and works on lock *expressions*: a
// function annotated REQUIRES(mu_) may only be called where `mu_` (the same
// expression, after substituting the arguments) is known to be held. The
// standard library's mutexes are not annotated; use the wrappers of
// common/mutex.h for any lock the analysis should see.
//
// Cheat sheet:
//   GUARDED_BY(mu)           data member read or written only with mu held
//   PT_GUARDED_BY(mu)        the pointee of a pointer member is guarded
//   REQUIRES(mu...)          the caller must hold mu (exclusively)
//   REQUIRES_SHARED(mu...)   the caller must hold mu at least shared
//   EXCLUDES(mu...)          the caller must not hold mu (the function takes it)
//   ACQUIRE / RELEASE        the function takes / gives back the lock
//   ACQUIRED_BEFORE/AFTER    documents (and, with -Wthread-safety-beta,
//                            checks) the order between two locks
//   NO_THREAD_SAFETY_ANALYSIS  turns the analysis off for one function; say
//                            why next to it
#pragma once

#if defined(__clang__)
#define REMORA_THREAD_ATTRIBUTE(x) __attribute__((x))
#else
#define REMORA_THREAD_ATTRIBUTE(x)
#endif

// A type that is a lock ("mutex" or "role" in diagnostics).
#define CAPABILITY(name) REMORA_THREAD_ATTRIBUTE(capability(name))
// An RAII type that holds a lock for its lifetime.
#define SCOPED_CAPABILITY REMORA_THREAD_ATTRIBUTE(scoped_lockable)

#define GUARDED_BY(x) REMORA_THREAD_ATTRIBUTE(guarded_by(x))
#define PT_GUARDED_BY(x) REMORA_THREAD_ATTRIBUTE(pt_guarded_by(x))

#define ACQUIRED_BEFORE(...) REMORA_THREAD_ATTRIBUTE(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) REMORA_THREAD_ATTRIBUTE(acquired_after(__VA_ARGS__))

#define REQUIRES(...) REMORA_THREAD_ATTRIBUTE(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) REMORA_THREAD_ATTRIBUTE(requires_shared_capability(__VA_ARGS__))

#define ACQUIRE(...) REMORA_THREAD_ATTRIBUTE(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) REMORA_THREAD_ATTRIBUTE(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) REMORA_THREAD_ATTRIBUTE(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) REMORA_THREAD_ATTRIBUTE(release_shared_capability(__VA_ARGS__))
// Releases a lock held either way (scoped locks that may hold it shared).
#define RELEASE_GENERIC(...) REMORA_THREAD_ATTRIBUTE(release_generic_capability(__VA_ARGS__))

#define TRY_ACQUIRE(...) REMORA_THREAD_ATTRIBUTE(try_acquire_capability(__VA_ARGS__))
#define TRY_ACQUIRE_SHARED(...) REMORA_THREAD_ATTRIBUTE(try_acquire_shared_capability(__VA_ARGS__))

#define EXCLUDES(...) REMORA_THREAD_ATTRIBUTE(locks_excluded(__VA_ARGS__))

// Tells the analysis the lock is held from here on (checked at run time by
// whatever the function does, not by the compiler).
#define ASSERT_CAPABILITY(x) REMORA_THREAD_ATTRIBUTE(assert_capability(x))
#define ASSERT_SHARED_CAPABILITY(x) REMORA_THREAD_ATTRIBUTE(assert_shared_capability(x))

// The function returns a reference to the lock x (accessors).
#define RETURN_CAPABILITY(x) REMORA_THREAD_ATTRIBUTE(lock_returned(x))

#define NO_THREAD_SAFETY_ANALYSIS REMORA_THREAD_ATTRIBUTE(no_thread_safety_analysis)
