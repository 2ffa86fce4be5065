// Ask POST /predict for each weight typed and show its answer without reloading the page.
// The model lives only in the service: this file sends what was typed and draws the answer.
"use strict";

(() => {
  const form = document.getElementById("predict-form");
  const input = document.getElementById("weight");
  const error = document.getElementById("weight-error");
  const answer = document.getElementById("answer");
  const chart = document.getElementById("chart");
  const marker = document.getElementById("prediction");
  const point = document.getElementById("prediction-point");
  const label = document.getElementById("prediction-label");
  // JSON's number grammar, as in page.py: anything else goes as a string for the API to judge.
  const JSON_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
  let latest = 0; // answers can arrive out of order: only the newest request's answer counts

  function requestBody(text) {
    const trimmed = text.trim();
    return JSON_NUMBER.test(trimmed) ? `{"Weight": ${trimmed}}` : JSON.stringify({ Weight: trimmed });
  }

  // Map a value onto the chart's pixels the way page.Scale does, clamping it to the axis.
  function scale(value, low, high, startPx, endPx) {
    const clamped = Math.min(Math.max(value, low), high);
    return Math.round((startPx + ((clamped - low) / (high - low)) * (endPx - startPx)) * 10) / 10;
  }

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    answer.hidden = true;
    marker.classList.add("is-empty");
  }

  function showPrediction(weightLbs, prediction) {
    error.hidden = true;
    error.textContent = "";
    input.removeAttribute("aria-invalid");
    document.getElementById("answer-human").textContent = prediction.height_human_readable;
    document.getElementById("answer-inches").textContent = prediction.height_inches;
    const warning = document.getElementById("answer-warning");
    warning.textContent = prediction.warning || "";
    warning.hidden = !prediction.warning;
    answer.hidden = false;

    const d = chart.dataset;
    const [xLow, xHigh, yLow, yHigh] = [d.xLow, d.xHigh, d.yLow, d.yHigh].map(Number);
    const [left, right, top, bottom] = [d.left, d.right, d.top, d.bottom].map(Number);
    const height = prediction.height_inches;
    const cx = scale(weightLbs, xLow, xHigh, left, right);
    const cy = scale(height, yLow, yHigh, bottom, top);
    const rightHalf = cx > (left + right) / 2;
    point.setAttribute("cx", cx);
    point.setAttribute("cy", cy);
    label.setAttribute("x", rightHalf ? cx - 10 : cx + 10);
    label.setAttribute("y", cy < top + 20 ? cy + 20 : cy - 10);
    label.setAttribute("text-anchor", rightHalf ? "end" : "start");
    label.textContent = `${weightLbs} lb → ${height.toFixed(1)} in`;
    const onChart = weightLbs >= xLow && weightLbs <= xHigh && height >= yLow && height <= yHigh;
    marker.classList.toggle("off-chart", !onChart);
    marker.classList.remove("is-empty");
  }

  async function predict(text) {
    const request = ++latest;
    const body = requestBody(text);
    let response, answerBody;
    try {
      response = await fetch(form.dataset.predictUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body,
      });
      answerBody = await response.json();
    } catch (failure) {
      if (request === latest) showError(`Could not get an answer from the service: ${failure.message}`);
      return;
    }
    if (request !== latest) return;
    if (!response.ok) {
      showError(answerBody.error || `The service answered HTTP ${response.status}.`);
      return;
    }
    showPrediction(JSON.parse(body).Weight, answerBody.prediction);
    // Reloading or sharing the address shows the same answer, rendered by the server.
    history.replaceState(null, "", `?weight=${encodeURIComponent(text.trim())}`);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    predict(input.value);
  });
})();
