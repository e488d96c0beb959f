//! libnftables in process, the library the `nft` binary is built on: loaded at run time (no
//! build-time link, no -dev package), one context whose every use, a run and the read of its
//! buffers, holds one lock, as the library's contexts are not thread-safe.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::sync::Mutex;

use libloading::Library;

use super::Answer;

/// The library's file name, as Debian's libnftables1 installs it.
pub const LIBRARY: &str = "libnftables.so.1";

const CTX_DEFAULT: c_uint = 0;
const OUTPUT_HANDLE: c_uint = 1 << 3;
const OUTPUT_JSON: c_uint = 1 << 4;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("loading {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: libloading::Error,
    },
    #[error("{path} has no {symbol}: {source}")]
    Symbol {
        path: String,
        symbol: &'static str,
        #[source]
        source: libloading::Error,
    },
    #[error("{path}: nft_ctx_new gave no context")]
    Context { path: String },
    #[error("{path}: the context would not buffer its output and errors")]
    Buffers { path: String },
}

type NewFn = unsafe extern "C" fn(c_uint) -> *mut c_void;
type ContextFn = unsafe extern "C" fn(*mut c_void) -> c_int;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type BufferFn = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type SetFlagsFn = unsafe extern "C" fn(*mut c_void, c_uint);
type RunFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;

/// The entry points used after the context is made, valid while the library stays loaded.
struct Functions {
    free: FreeFn,
    set_output_flags: SetFlagsFn,
    run: RunFn,
    output: BufferFn,
    error: BufferFn,
}

/// An `nft_ctx`, only touched with its lock held.
struct Context(*mut c_void);

// SAFETY: libnftables asks only that one thread at a time use a context; the Mutex around it
// sees to that.
unsafe impl Send for Context {}

/// The loaded library and its one context.
pub struct Libnftables {
    context: Mutex<Context>,
    functions: Functions,
    // Unloaded last (fields drop after `drop`): the functions point into it.
    _library: Library,
}

impl Libnftables {
    /// Loads the library at `path` (a file name is looked up as the dynamic linker does) and
    /// makes a context buffering its output and errors.
    pub fn load(path: &str) -> Result<Libnftables, LoadError> {
        // SAFETY: libnftables' initialisers only set up its own state.
        let library = unsafe { Library::new(path) }.map_err(|source| LoadError::Open {
            path: path.to_string(),
            source,
        })?;
        let new: NewFn = symbol(&library, path, "nft_ctx_new")?;
        let buffer_output: ContextFn = symbol(&library, path, "nft_ctx_buffer_output")?;
        let buffer_error: ContextFn = symbol(&library, path, "nft_ctx_buffer_error")?;
        let functions = Functions {
            free: symbol(&library, path, "nft_ctx_free")?,
            set_output_flags: symbol(&library, path, "nft_ctx_output_set_flags")?,
            run: symbol(&library, path, "nft_run_cmd_from_buffer")?,
            output: symbol(&library, path, "nft_ctx_get_output_buffer")?,
            error: symbol(&library, path, "nft_ctx_get_error_buffer")?,
        };
        // SAFETY: the signatures are libnftables.h's; the context is freed on failure.
        let context = unsafe { new(CTX_DEFAULT) };
        if context.is_null() {
            return Err(LoadError::Context {
                path: path.to_string(),
            });
        }
        // SAFETY: as above, on the context just made.
        let buffered = unsafe { buffer_output(context) == 0 && buffer_error(context) == 0 };
        if !buffered {
            // SAFETY: as above; the context is not used again.
            unsafe { (functions.free)(context) };
            return Err(LoadError::Buffers {
                path: path.to_string(),
            });
        }
        Ok(Libnftables {
            context: Mutex::new(Context(context)),
            functions,
            _library: library,
        })
    }

    /// Runs `commands` (nft's script syntax) as one transaction; with `listing`, their output
    /// is JSON with handles.
    pub(super) fn run(&self, commands: &str, listing: bool) -> Answer {
        let Ok(commands) = CString::new(commands) else {
            return Answer {
                succeeded: false,
                output: String::new(),
                error: "the commands hold a NUL byte".to_string(),
            };
        };
        let flags = if listing {
            OUTPUT_JSON | OUTPUT_HANDLE
        } else {
            0
        };
        let f = &self.functions;
        let context = self.context.lock().expect("libnftables lock");
        // SAFETY: the context is live and ours alone while the lock is held; reading a
        // buffer resets it, so each run starts with empty ones.
        unsafe {
            (f.set_output_flags)(context.0, flags);
            let status = (f.run)(context.0, commands.as_ptr());
            Answer {
                succeeded: status == 0,
                output: text((f.output)(context.0)),
                error: text((f.error)(context.0)),
            }
        }
    }
}

impl Drop for Libnftables {
    fn drop(&mut self) {
        let context = self.context.get_mut().expect("libnftables lock");
        // SAFETY: the context is live and no one else can reach it any more.
        unsafe { (self.functions.free)(context.0) };
    }
}

/// The entry point `name` of `library`, typed `T` (a function pointer of its C signature).
fn symbol<T: Copy>(library: &Library, path: &str, name: &'static str) -> Result<T, LoadError> {
    // SAFETY: each caller's `T` is the C signature libnftables.h gives `name`.
    unsafe { library.get::<T>(name.as_bytes()) }
        .map(|found| *found)
        .map_err(|source| LoadError::Symbol {
            path: path.to_string(),
            symbol: name,
            source,
        })
}

/// A buffer's text; null reads as empty.
///
/// # Safety
/// `buffer` is null or a NUL-terminated string that stays valid for the call.
unsafe fn text(buffer: *const c_char) -> String {
    if buffer.is_null() {
        return String::new();
    }
    CStr::from_ptr(buffer).to_string_lossy().into_owned()
}
