//! QR codes of box labels, as PNG.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Luma};
use qrcode::{EcLevel, QrCode};
use zerotouch_core::BarcodePayload;

use crate::FactoryError;

/// Pixels per QR module in the PNG: about 1.5 mm a module at 300 dpi, easy for any scanner.
pub const QR_MODULE_PIXELS: u32 = 8;

/// A QR code (error correction level M, alphanumeric mode, with its quiet zone) of
/// `payload.encode()`, as a PNG image in 8-bit grey.
pub fn qr_png(payload: &BarcodePayload) -> Result<Vec<u8>, FactoryError> {
    let text = payload.encode();
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| FactoryError::Qr(e.to_string()))?;
    let image = code
        .render::<Luma<u8>>()
        .module_dimensions(QR_MODULE_PIXELS, QR_MODULE_PIXELS)
        .quiet_zone(true)
        .build();
    let mut png = Vec::new();
    DynamicImage::ImageLuma8(image)
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .map_err(|e| FactoryError::Qr(format!("PNG encoding: {e}")))?;
    Ok(png)
}
