// QR codes drawn into a canvas with qrcode-generator (no inline styles, no innerHTML).

import qrcode from "qrcode-generator";

/**
 * @param {HTMLCanvasElement} canvas
 * @param {string} text
 * @param {{cell?: number, margin?: number}} [options]
 */
export function drawQr(canvas, text, { cell = 6, margin = 4 } = {}) {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  const count = qr.getModuleCount();
  const size = (count + margin * 2) * cell;
  canvas.width = size;
  canvas.height = size;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, size, size);
  ctx.fillStyle = "#000000";
  for (let r = 0; r < count; r++) {
    for (let c = 0; c < count; c++) {
      if (qr.isDark(r, c)) ctx.fillRect((c + margin) * cell, (r + margin) * cell, cell, cell);
    }
  }
}
