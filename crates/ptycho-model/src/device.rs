//! Run-time backend selection. `flex` (pure-Rust CPU) is always compiled; `tch` (libtorch CPU and
//! CUDA) and `ndarray` need the crate features of the same names.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

use crate::error::ModelError;

/// A backend/device named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// Burn's pure-Rust CPU backend (`cpu` or `flex`).
    Flex,
    /// libtorch on the CPU (`tch-cpu`, feature `tch`).
    TchCpu,
    /// libtorch on CUDA device N (`cuda` = `cuda:0`, feature `tch`).
    Cuda(usize),
    /// The deprecated burn-ndarray backend (`ndarray`, feature `ndarray`).
    NdArray,
}

impl FromStr for DeviceKind {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "cpu" | "flex" => Ok(Self::Flex),
            "tch-cpu" | "tch" => Ok(Self::TchCpu),
            "cuda" => Ok(Self::Cuda(0)),
            "ndarray" => Ok(Self::NdArray),
            _ => {
                if let Some(idx) = t.strip_prefix("cuda:") {
                    idx.parse::<usize>()
                        .map(Self::Cuda)
                        .map_err(|_| ModelError::UnknownDevice {
                            device: s.to_string(),
                        })
                } else {
                    Err(ModelError::UnknownDevice {
                        device: s.to_string(),
                    })
                }
            }
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flex => write!(f, "flex"),
            Self::TchCpu => write!(f, "tch-cpu"),
            Self::Cuda(0) => write!(f, "cuda"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
            Self::NdArray => write!(f, "ndarray"),
        }
    }
}

impl DeviceKind {
    /// The cargo feature this kind needs (`None` for flex, always built).
    pub fn feature(&self) -> Option<&'static str> {
        match self {
            Self::Flex => None,
            Self::TchCpu | Self::Cuda(_) => Some("tch"),
            Self::NdArray => Some("ndarray"),
        }
    }

    /// Whether this build can make the device.
    pub fn is_compiled(&self) -> bool {
        match self {
            Self::Flex => true,
            Self::TchCpu | Self::Cuda(_) => cfg!(feature = "tch"),
            Self::NdArray => cfg!(feature = "ndarray"),
        }
    }

    /// The (non-autodiff) Burn device; call `.autodiff()` on it for training.
    pub fn to_device(&self) -> Result<Device, ModelError> {
        match self {
            Self::Flex => Ok(Device::flex()),
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            Self::TchCpu => Ok(Device::libtorch()),
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            Self::Cuda(i) => Ok(Device::libtorch_cuda(*i)),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            Self::NdArray => Ok(Device::ndarray()),
            #[allow(unreachable_patterns)]
            other => Err(ModelError::BackendNotCompiled {
                device: other.to_string(),
                feature: other.feature().unwrap_or("flex"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_strings() {
        assert_eq!("cpu".parse::<DeviceKind>().unwrap(), DeviceKind::Flex);
        assert_eq!("FLEX".parse::<DeviceKind>().unwrap(), DeviceKind::Flex);
        assert_eq!("tch-cpu".parse::<DeviceKind>().unwrap(), DeviceKind::TchCpu);
        assert_eq!("cuda".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda(3));
        assert_eq!(
            "ndarray".parse::<DeviceKind>().unwrap(),
            DeviceKind::NdArray
        );
        assert!(matches!(
            "gpu".parse::<DeviceKind>(),
            Err(ModelError::UnknownDevice { .. })
        ));
        assert!("cuda:x".parse::<DeviceKind>().is_err());
    }

    #[test]
    fn flex_always_builds_and_missing_features_are_named() {
        assert!(DeviceKind::Flex.to_device().is_ok());
        if !cfg!(feature = "tch") {
            let e = DeviceKind::Cuda(0).to_device().unwrap_err();
            assert_eq!(
                e.to_string(),
                "device `cuda` needs ptycho built with `--features tch`"
            );
        }
        if !cfg!(feature = "ndarray") {
            assert!(matches!(
                DeviceKind::NdArray.to_device(),
                Err(ModelError::BackendNotCompiled {
                    feature: "ndarray",
                    ..
                })
            ));
        }
    }
}
