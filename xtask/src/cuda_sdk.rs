//! `cargo xtask cuda-sdk`: a CUDA root that `luminal_cuda` builds against, made from NVIDIA's
//! PyPI wheels, on a machine without a GPU or a CUDA toolkit (the recipe of `shared/CUDA.md`).
//!
//! The wheels give headers and the runtime, NVRTC, cuBLAS and cuRAND libraries. The driver library
//! is in no wheel: a stub `libcuda.so` (soname `libcuda.so.1`) that defines every driver function
//! `cuda.h` declares satisfies the linker, and the real driver's `libcuda.so.1` is loaded at run
//! time on a GPU machine.

use std::collections::BTreeSet;
use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The wheels, as pip requirements. CUDA 13.0 matches the driver of the project's GPU machines.
const REQUIREMENTS: [&str; 4] = [
    "nvidia-cuda-runtime==13.0.*",
    "nvidia-cuda-nvrtc==13.0.*",
    "nvidia-cublas==13.0.*",
    "nvidia-curand",
];

/// The wheel that holds `ptxas`, for `--with-ptxas`.
const PTXAS_REQUIREMENT: &str = "nvidia-cuda-nvcc==13.0.*";

/// The folder inside each wheel that holds `include/` and `lib/`.
const WHEEL_ROOT: &str = "nvidia/cu13/";

/// Written last, so that an interrupted run is redone rather than taken as finished.
const COMPLETE_MARKER: &str = ".cuda-sdk-complete";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to put the CUDA root [default: target/cuda-sdk].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Also put `ptxas` in the root's `bin/` (from the nvcc wheel, about 40 MB), to read a
    /// kernel's registers and spills without a GPU (`ptxas -v`; docs/perf.md, runs 59-62).
    #[arg(long)]
    with_ptxas: bool,
}

pub fn run(args: &Args, repo_root: &Path) -> Result<()> {
    let target = repo_root.join("target");
    let out = match &args.out {
        Some(out) if out.is_absolute() => out.clone(),
        Some(out) => std::env::current_dir()?.join(out),
        None => target.join("cuda-sdk"),
    };
    let wheels = target.join("cuda-wheels");
    let python = find_pip()?;
    require_tool(
        "gcc",
        "the stub libcuda.so is compiled with gcc: install it (e.g. `apt-get install gcc`)",
    )?;

    let mut requirements = REQUIREMENTS.to_vec();
    if args.with_ptxas {
        requirements.push(PTXAS_REQUIREMENT);
    }
    download_wheels(&python, &wheels, &requirements)?;
    if out.join(COMPLETE_MARKER).is_file() {
        eprintln!("cuda-sdk: {} is complete already", out.display());
    } else {
        if out.exists() {
            fs::remove_dir_all(&out)?;
        }
        fs::create_dir_all(&out)?;
        unpack_wheels(&python, &wheels, &out)?;
        link_unversioned_libraries(&out.join("lib"))?;
        build_driver_stub(&out)?;
        fs::write(out.join(COMPLETE_MARKER), "")?;
    }
    if args.with_ptxas && !out.join("bin/ptxas").is_file() {
        unpack_ptxas(&python, &wheels, &out)?;
    }
    println!("export CUDA_ROOT={}", out.display());
    Ok(())
}

/// A Python whose pip works (pip downloads the wheels; Python's zipfile unpacks them).
fn find_pip() -> Result<String> {
    for python in ["python3", "python"] {
        let works = Command::new(python)
            .args(["-m", "pip", "--version"])
            .output()
            .is_ok_and(|output| output.status.success());
        if works {
            return Ok(python.to_string());
        }
    }
    Err("pip is needed to download NVIDIA's CUDA wheels: install Python 3 with pip (e.g. `apt-get install python3-pip`), or point CUDA_ROOT at an installed CUDA toolkit instead".into())
}

fn require_tool(tool: &str, advice: &str) -> Result<()> {
    match Command::new(tool).arg("--version").output() {
        Ok(output) if output.status.success() => Ok(()),
        _ => Err(format!("{tool} not found: {advice}").into()),
    }
}

fn download_wheels(python: &str, wheels: &Path, requirements: &[&str]) -> Result<()> {
    let have = |requirement: &str| -> bool {
        let prefix = wheel_prefix(requirement);
        fs::read_dir(wheels).is_ok_and(|entries| {
            entries.flatten().any(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.starts_with(&prefix) && name.ends_with(".whl")
            })
        })
    };
    let missing: Vec<&str> = requirements
        .iter()
        .copied()
        .filter(|requirement| !have(requirement))
        .collect();
    if missing.is_empty() {
        eprintln!("cuda-sdk: wheels cached in {}", wheels.display());
        return Ok(());
    }
    fs::create_dir_all(wheels)?;
    eprintln!("cuda-sdk: downloading {missing:?} (about 600 MB)");
    let mut pip = Command::new(python);
    pip.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--python-version", "3.12"]);
    for platform in [
        "manylinux_2_28_x86_64",
        "manylinux_2_27_x86_64",
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
    ] {
        pip.args(["--platform", platform]);
    }
    pip.arg("-d").arg(wheels).args(&missing);
    run_command(&mut pip, "pip download")
}

/// The start of a wheel's file name for a requirement: `nvidia-cuda-nvrtc==13.0.*` ->
/// `nvidia_cuda_nvrtc-13.0.`.
fn wheel_prefix(requirement: &str) -> String {
    let (name, version) = requirement.split_once("==").unwrap_or((requirement, ""));
    let name = name.replace('-', "_");
    format!("{name}-{}", version.trim_end_matches('*'))
}

/// Extracts `include/` and `lib/` of every wheel's CUDA folder into `out`.
fn unpack_wheels(python: &str, wheels: &Path, out: &Path) -> Result<()> {
    let mut found = Vec::new();
    for entry in fs::read_dir(wheels)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if REQUIREMENTS
            .iter()
            .any(|requirement| name.starts_with(&wheel_prefix(requirement)))
        {
            found.push(path);
        }
    }
    found.sort();
    eprintln!(
        "cuda-sdk: unpacking {} wheels into {}",
        found.len(),
        out.display()
    );
    // Python's zipfile, so that no unzip tool is needed; only members under WHEEL_ROOT.
    const UNPACK: &str = r#"
import os, sys, zipfile
root, out = sys.argv[1], sys.argv[2]
for wheel in sys.argv[3:]:
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            if not member.filename.startswith(root) or member.is_dir():
                continue
            target = os.path.join(out, member.filename[len(root):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with archive.open(member) as source, open(target, "wb") as sink:
                while chunk := source.read(1 << 20):
                    sink.write(chunk)
"#;
    let mut unpack = Command::new(python);
    unpack
        .args(["-c", UNPACK, WHEEL_ROOT])
        .arg(out)
        .args(&found);
    run_command(&mut unpack, "unpacking the wheels")?;
    if !out.join("include/cuda.h").is_file() {
        return Err(format!(
            "the wheels in {} hold no {WHEEL_ROOT}include/cuda.h",
            wheels.display()
        )
        .into());
    }
    Ok(())
}

/// `bin/ptxas` from the nvcc wheel into `out`, executable.
fn unpack_ptxas(python: &str, wheels: &Path, out: &Path) -> Result<()> {
    let prefix = wheel_prefix(PTXAS_REQUIREMENT);
    let wheel = fs::read_dir(wheels)?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".whl")
        })
        .ok_or_else(|| format!("no {prefix}*.whl in {}", wheels.display()))?;
    const UNPACK: &str = r#"
import os, sys, zipfile
member, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(sys.argv[3]) as archive, archive.open(member) as source:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as sink:
        while chunk := source.read(1 << 20):
            sink.write(chunk)
os.chmod(target, 0o755)
"#;
    let target = out.join("bin/ptxas");
    let mut unpack = Command::new(python);
    unpack
        .args(["-c", UNPACK, &format!("{WHEEL_ROOT}bin/ptxas")])
        .arg(&target)
        .arg(&wheel);
    run_command(&mut unpack, "unpacking ptxas")?;
    eprintln!("cuda-sdk: {}", target.display());
    Ok(())
}

/// `libfoo.so -> libfoo.so.13` for every versioned library: the linker asks for `-lfoo`.
fn link_unversioned_libraries(lib: &Path) -> Result<()> {
    for entry in fs::read_dir(lib)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(unversioned) = unversioned_name(&name) {
            let link = lib.join(&unversioned);
            if !link.exists() {
                std::os::unix::fs::symlink(&name, &link)?;
            }
        }
    }
    Ok(())
}

/// `libcublas.so.13` -> `libcublas.so`; `None` for names without a version after `.so`.
fn unversioned_name(name: &str) -> Option<String> {
    let (stem, version) = name.split_once(".so.")?;
    let numeric = version.split('.').all(|part| part.parse::<u32>().is_ok());
    numeric.then(|| format!("{stem}.so"))
}

fn build_driver_stub(out: &Path) -> Result<()> {
    let header = fs::read_to_string(out.join("include/cuda.h"))?;
    let names = driver_function_names(&header);
    if names.is_empty() {
        return Err("found no driver functions in cuda.h".into());
    }
    let source = out.join("lib/libcuda-stub.c");
    fs::write(&source, stub_source(&names))?;
    let mut gcc = Command::new("gcc");
    gcc.args(["-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o"])
        .arg(out.join("lib/libcuda.so"))
        .arg(&source);
    run_command(&mut gcc, "compiling the stub libcuda.so")?;
    eprintln!(
        "cuda-sdk: stub libcuda.so with {} driver functions",
        names.len()
    );
    Ok(())
}

/// Every driver function name in `cuda.h`: the declared names (`CUresult CUDAAPI cuInit(...)`)
/// and both sides of the versioning macros (`#define cuMemAlloc cuMemAlloc_v2`), since a binding
/// may call either spelling.
pub fn driver_function_names(header: &str) -> BTreeSet<String> {
    let is_driver_name = |word: &str| {
        word.len() > 2
            && word.starts_with("cu")
            && word.chars().nth(2).is_some_and(|c| c.is_ascii_uppercase())
            && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut names = BTreeSet::new();
    for line in header.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["#define", name, target, ..] = words.as_slice() {
            if is_driver_name(name) && is_driver_name(target) {
                names.insert(name.to_string());
                names.insert(target.to_string());
            }
        }
    }
    let mut rest = header;
    while let Some(at) = rest.find("CUDAAPI") {
        rest = &rest[at + "CUDAAPI".len()..];
        let declared = rest.trim_start();
        let name: String = declared
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let followed_by_call = declared[name.len()..].trim_start().starts_with('(');
        if followed_by_call && is_driver_name(&name) {
            names.insert(name);
        }
    }
    names
}

/// A C file defining each name as an empty function: only the linker sees it.
pub fn stub_source(names: &BTreeSet<String>) -> String {
    let mut source = String::from(
        "/* Generated by `cargo xtask cuda-sdk`: link-time stand-in for the driver library. */\n",
    );
    for name in names {
        source.push_str(&format!("void {name}(void) {{}}\n"));
    }
    source
}

fn run_command(command: &mut Command, what: &str) -> Result<()> {
    let status = command
        .status()
        .map_err(|e| format!("{what}: could not start {:?}: {e}", command.get_program()))?;
    if !status.success() {
        return Err(format!("{what} failed ({status})").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = r#"
#if defined(CUDA_FORCE_API_VERSION)
#else
    #define cuDeviceTotalMem                    cuDeviceTotalMem_v2
    #define cuMemAlloc                          cuMemAlloc_v2
    #define CUDA_VERSION 13000
#endif
typedef int CUresult;
CUresult CUDAAPI cuInit(unsigned int Flags);
CUresult CUDAAPI cuMemAlloc(CUdeviceptr *dptr, size_t bytesize);
CUresult CUDAAPI
cuLaunchKernel(CUfunction f, unsigned int gridDimX);
typedef CUresult (CUDAAPI *PFN_cuInit)(unsigned int Flags);
"#;

    #[test]
    fn finds_declared_and_versioned_driver_names() {
        let names: Vec<String> = driver_function_names(HEADER).into_iter().collect();
        assert_eq!(
            names,
            [
                "cuDeviceTotalMem",
                "cuDeviceTotalMem_v2",
                "cuInit",
                "cuLaunchKernel",
                "cuMemAlloc",
                "cuMemAlloc_v2"
            ]
        );
    }

    #[test]
    fn stub_defines_each_name_once() {
        let source = stub_source(&driver_function_names(HEADER));
        assert_eq!(source.matches("void cuInit(void) {}").count(), 1);
        assert_eq!(source.matches("(void) {}").count(), 6);
    }

    #[test]
    fn unversioned_library_names() {
        assert_eq!(
            unversioned_name("libcublas.so.13").as_deref(),
            Some("libcublas.so")
        );
        assert_eq!(
            unversioned_name("libnvrtc-builtins.so.13.0").as_deref(),
            Some("libnvrtc-builtins.so")
        );
        assert_eq!(unversioned_name("libcudart_static.a"), None);
        assert_eq!(unversioned_name("libcublas.so"), None);
    }

    #[test]
    fn wheel_prefixes() {
        assert_eq!(
            wheel_prefix("nvidia-cuda-nvrtc==13.0.*"),
            "nvidia_cuda_nvrtc-13.0."
        );
        assert_eq!(wheel_prefix("nvidia-curand"), "nvidia_curand-");
        assert_eq!(wheel_prefix(PTXAS_REQUIREMENT), "nvidia_cuda_nvcc-13.0.");
    }
}
