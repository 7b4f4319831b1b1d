// Placing a seal on a page: drag it (Pointer Events: mouse, touch, pen) or move it with the arrow
// keys; it is shown at its true size on the rendered page.  The form carries the seal's centre in
// millimetres from the displayed page's lower-left corner (what seal.AtPosition takes).
// No inline script, no library: vendored here, served by the console (CSP script-src 'self').
(function () {
  "use strict";
  var stage = document.getElementById("stage");
  if (!stage) { return; }
  var image = stage.querySelector("[data-testid=page-image]");
  var handle = stage.querySelector("[data-testid=seal-handle]");
  var fieldX = document.getElementById("f-x");
  var fieldY = document.getElementById("f-y");
  var readout = document.getElementById("seal-pos");
  var pageW = parseFloat(stage.dataset.pageWidthMm);
  var pageH = parseFloat(stage.dataset.pageHeightMm);
  var sealW = parseFloat(stage.dataset.sealWidthMm);
  var sealH = parseFloat(stage.dataset.sealHeightMm);
  var page = parseInt(stage.dataset.page, 10);
  var x = parseFloat(stage.dataset.xMm);
  var y = parseFloat(stage.dataset.yMm);
  var grab = null;   // {dx, dy}: where the pointer holds the seal, from its centre, in px

  function scale() { return image.clientWidth / pageW; }   // px per mm as displayed now

  function clamp(value, low, high) { return Math.min(Math.max(value, low), high); }

  function show() {
    var s = scale();
    var w = sealW * s, h = sealH * s;
    handle.style.width = w + "px";
    handle.style.height = h + "px";
    handle.style.left = (x * s - w / 2) + "px";
    handle.style.top = ((pageH - y) * s - h / 2) + "px";
    fieldX.value = x.toFixed(2);
    fieldY.value = y.toFixed(2);
    handle.setAttribute("aria-label", "印章，第 " + page + " 页，距左 " + x.toFixed(1) + " 毫米，距下 " + y.toFixed(1) + " 毫米");
    readout.textContent = "第 " + page + " 页，距左 " + x.toFixed(1) + " 毫米，距下 " + y.toFixed(1) + " 毫米";
  }

  function moveTo(mmX, mmY) {
    x = clamp(mmX, 0, pageW);
    y = clamp(mmY, 0, pageH);
    show();
  }

  function pointerMm(event) {
    var box = image.getBoundingClientRect();
    var s = scale();
    return [(event.clientX - box.left) / s, pageH - (event.clientY - box.top) / s];
  }

  handle.addEventListener("pointerdown", function (event) {
    if (event.button !== 0) { return; }
    event.preventDefault();
    var s = scale();
    var at = pointerMm(event);
    grab = {dx: (at[0] - x) * s, dy: (at[1] - y) * s};
    handle.setPointerCapture(event.pointerId);
    handle.classList.add("dragging");
    handle.focus();
  });
  handle.addEventListener("pointermove", function (event) {
    if (grab === null) { return; }
    event.preventDefault();
    var s = scale();
    var at = pointerMm(event);
    moveTo(at[0] - grab.dx / s, at[1] - grab.dy / s);
  });
  function drop(event) {
    if (grab === null) { return; }
    grab = null;
    handle.classList.remove("dragging");
    if (handle.hasPointerCapture(event.pointerId)) { handle.releasePointerCapture(event.pointerId); }
  }
  handle.addEventListener("pointerup", drop);
  handle.addEventListener("pointercancel", drop);

  // a press on the page itself puts the seal's centre there and goes on dragging it
  image.addEventListener("pointerdown", function (event) {
    if (event.button !== 0) { return; }
    event.preventDefault();
    var at = pointerMm(event);
    moveTo(at[0], at[1]);
    grab = {dx: 0, dy: 0};
    handle.setPointerCapture(event.pointerId);
    handle.classList.add("dragging");
    handle.focus();
  });

  handle.addEventListener("keydown", function (event) {
    var step = event.shiftKey ? 10 : 1;
    var moves = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step]};
    var move = moves[event.key];
    if (!move) { return; }
    event.preventDefault();
    moveTo(x + move[0], y + move[1]);
  });

  var snap = document.getElementById("snap");
  if (snap) {
    snap.addEventListener("click", function () {
      var snapPage = parseInt(stage.dataset.snapPage, 10);
      if (snapPage === page) {
        moveTo(parseFloat(stage.dataset.snapXMm), parseFloat(stage.dataset.snapYMm));
        handle.focus();
      } else {
        var link = document.querySelector(".toolbar a[href*='page=" + snapPage + "&']");
        if (link) { window.location.href = link.href; }
      }
    });
  }

  var previewButton = document.getElementById("preview-button");
  var preview = document.getElementById("preview");
  var previewImage = document.getElementById("preview-image");
  if (previewButton) {
    previewButton.addEventListener("click", function () {
      var url = stage.dataset.previewUrl;
      url += (url.indexOf("?") >= 0 ? "&" : "?") + "page=" + page + "&x_mm=" + x.toFixed(2) + "&y_mm=" +
        y.toFixed(2) + "&zoom=" + stage.dataset.zoom;
      previewImage.src = url;
      preview.hidden = false;
      preview.scrollIntoView({block: "nearest"});
    });
  }

  function ready() { handle.hidden = false; show(); }
  if (image.complete && image.naturalWidth) { ready(); } else { image.addEventListener("load", ready); }
  window.addEventListener("resize", show);
})();
