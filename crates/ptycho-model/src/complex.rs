//! Complex fields as one value: [`ComplexTensor`], real and imaginary parts of identical shape
//! `(B, C, N, N)` (Burn has no complex dtype).

use std::ops::Mul;

use burn::tensor::Tensor;

/// A complex tensor `re + i·im`; both parts have the same shape.
#[derive(Debug, Clone)]
pub struct ComplexTensor {
    pub re: Tensor<4>,
    pub im: Tensor<4>,
}

impl ComplexTensor {
    pub fn new(re: Tensor<4>, im: Tensor<4>) -> Self {
        Self { re, im }
    }

    /// `a·e^{iφ}` = `(a·cos φ, a·sin φ)`.
    pub fn from_polar(amp: Tensor<4>, phase: Tensor<4>) -> Self {
        let re = amp.clone() * phase.clone().cos();
        let im = amp * phase.sin();
        Self { re, im }
    }

    /// Shape of either part.
    pub fn dims(&self) -> [usize; 4] {
        self.re.dims()
    }

    /// The same real-linear map applied to both parts (pad, crop, blur, real matmul, …).
    pub fn map(self, f: impl Fn(Tensor<4>) -> Tensor<4>) -> Self {
        Self {
            re: f(self.re),
            im: f(self.im),
        }
    }

    /// Both parts multiplied by a real tensor (broadcasting).
    pub fn mul_real(self, m: Tensor<4>) -> Self {
        Self {
            re: self.re * m.clone(),
            im: self.im * m,
        }
    }

    /// Batched complex matrix product over the last two axes.
    pub fn matmul(self, other: Self) -> Self {
        let re =
            self.re.clone().matmul(other.re.clone()) - self.im.clone().matmul(other.im.clone());
        let im = self.re.matmul(other.im) + self.im.matmul(other.re);
        Self { re, im }
    }

    /// `|z|² = re² + im²`.
    pub fn norm_sqr(self) -> Tensor<4> {
        self.re.powi_scalar(2) + self.im.powi_scalar(2)
    }

    /// Transpose of the last two axes (a strided view on flex).
    pub fn swap_last(self) -> Self {
        self.map(|t| t.swap_dims(2, 3))
    }
}

/// Element-wise complex product `(a + ib)(c + id)` (broadcasting).
impl Mul for ComplexTensor {
    type Output = Self;

    fn mul(self, other: Self) -> Self {
        let re = self.re.clone() * other.re.clone() - self.im.clone() * other.im.clone();
        let im = self.re * other.im + self.im * other.re;
        Self { re, im }
    }
}
