// Ask POST /predict for each row typed and show its answer without reloading the page.
// The model lives only in the service: this file sends what was typed and draws the answer.
"use strict";

(() => {
  const form = document.getElementById("predict-form");
  const fields = Array.from(form.querySelectorAll("[data-feature]"));
  const error = form.querySelector(".error");
  const answer = document.getElementById("answer");
  const chart = document.getElementById("chart");
  const marker = document.getElementById("prediction");
  const point = document.getElementById("prediction-point");
  const label = document.getElementById("prediction-label");
  // JSON's number grammar, as in page.py: anything else goes as a string for the API to judge.
  const JSON_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
  let latest = 0; // answers can arrive out of order: only the newest request's answer counts
  // The service's API token, when it asks for one: typed once, kept for this tab only.
  const tokenField = form.querySelector("[data-token]");
  const TOKEN_KEY = "cookbook-api-token";
  if (tokenField && !tokenField.value) tokenField.value = sessionStorage.getItem(TOKEN_KEY) || "";

  function authorization() {
    if (!tokenField || !tokenField.value.trim()) return {};
    sessionStorage.setItem(TOKEN_KEY, tokenField.value.trim());
    return { Authorization: `Bearer ${tokenField.value.trim()}` };
  }

  // The same body as page.request_body: numbers as typed, everything else as a string.
  function requestBody() {
    const parts = fields.map((field) => {
      const text = field.value.trim();
      const asNumber = field.dataset.kind === "number" && JSON_NUMBER.test(text);
      return `${JSON.stringify(field.dataset.feature)}: ${asNumber ? text : JSON.stringify(text)}`;
    });
    // A model that can explain is asked why, as page.request_body asks it.
    if (form.hasAttribute("data-explain")) parts.push('"explain": true');
    return `{${parts.join(", ")}}`;
  }

  // Map a value onto the chart's pixels the way page.Scale does, clamping it to the axis.
  function scale(value, low, high, startPx, endPx) {
    const clamped = Math.min(Math.max(value, low), high);
    return Math.round((startPx + ((clamped - low) / (high - low)) * (endPx - startPx)) * 10) / 10;
  }

  function intervalWords(interval) {
    const share = `${Math.round(interval.coverage * 100)}%`;
    if ("low_human_readable" in interval) {
      return `${share} of players like this are between ${interval.low_human_readable} and ${interval.high_human_readable}.`;
    }
    const unit = answer.dataset.unit ? ` ${answer.dataset.unit}` : "";
    return `${share} of cases like this are between ${interval.low}${unit} and ${interval.high}${unit}.`;
  }

  // A probability as a percentage to a tenth, halves up, by page.share_text's steps.
  function share(probability) {
    return `${(Math.floor(probability * 100 * 10 + 0.5) / 10).toFixed(1)}%`;
  }

  // The same sentence as page.set_words, from the answer's prediction set.
  function setWords(prediction) {
    if (!("set" in prediction)) return "";
    const coverage = `${Math.round(prediction.set_coverage * 100)}%`;
    if (!prediction.set.length) {
      return `The ${coverage} prediction set is empty: no class is likely enough for this row.`;
    }
    return `${coverage} prediction set: ${prediction.set.join(", ")}. It holds the true class for about ${coverage} of cases like this.`;
  }

  // A classifier's answer: its label, a bar and a percentage per class, its prediction set.
  function showClasses(prediction, classLabel) {
    classLabel.textContent = prediction.label;
    const probabilities = prediction.probabilities;
    answer.querySelectorAll("meter[data-class]").forEach((bar) => {
      bar.value = probabilities[bar.dataset.class];
    });
    answer.querySelectorAll(".class-share[data-class]").forEach((text) => {
      text.textContent = share(probabilities[text.dataset.class]);
    });
    const set = document.getElementById("answer-set");
    if (set) {
      set.textContent = setWords(prediction);
      set.hidden = !set.textContent;
    }
  }

  // A contribution to two decimals with its sign, as page_explanation.signed writes it.
  function signed(value) {
    return `${value < 0 ? "-" : "+"}${Math.abs(value).toFixed(2)}`;
  }

  // Why this answer, by page_explanation.why_this_answer's rules: a bar per feature, the
  // largest contribution first (the schema's order on a tie), coloured by its sign.
  function showWhy(prediction) {
    const why = document.getElementById("why");
    if (!why) return;
    const explanation = prediction.explanation;
    why.hidden = !explanation;
    if (!explanation) return;
    const contributions = explanation.contributions;
    const names = fields.map((field) => field.dataset.feature);
    const ordered = [...names].sort((a, b) => Math.abs(contributions[b]) - Math.abs(contributions[a]));
    const largest = Math.max(...ordered.map((name) => Math.abs(contributions[name]))) || 1;
    const bars = ordered.map((name) => {
      const value = contributions[name];
      const sign = value < 0 ? "negative" : "positive";
      const row = document.createElement("li");
      row.dataset.feature = name;
      row.dataset.sign = sign;
      const label = document.createElement("span");
      label.className = "why-name";
      label.textContent = name;
      const bar = document.createElement("meter");
      bar.className = `why-bar ${sign}`;
      bar.min = 0;
      bar.max = 1;
      bar.value = Math.abs(value) / largest;
      bar.setAttribute("aria-label", `Contribution of ${name}`);
      const text = document.createElement("span");
      text.className = `why-value ${sign}`;
      text.textContent = signed(value);
      row.append(label, bar, text);
      return row;
    });
    document.getElementById("why-bars").replaceChildren(...bars);
    const kind = why.dataset.explainedAs;
    const scale = kind ? `the ${kind} of ${prediction.label}` : why.dataset.unit;
    document.getElementById("why-base").textContent =
      `Base ${explanation.base.toFixed(2)}: the model's answer at the training means. ` +
      `Each bar is what a feature adds to it or takes from it, in ${scale}.`;
  }

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
    fields.forEach((field) => field.setAttribute("aria-invalid", "true"));
    answer.hidden = true;
    const why = document.getElementById("why");
    if (why) why.hidden = true;
    if (marker) marker.classList.add("is-empty");
  }

  function showAnswer(prediction) {
    error.hidden = true;
    error.textContent = "";
    fields.forEach((field) => field.removeAttribute("aria-invalid"));
    const value = document.getElementById("answer-value");
    const classLabel = document.getElementById("answer-label");
    if (classLabel) {
      showClasses(prediction, classLabel);
    } else if (value) {
      value.textContent = prediction[value.dataset.field];
    } else {
      document.getElementById("answer-human").textContent = prediction.height_human_readable;
      document.getElementById("answer-inches").textContent = prediction.height_inches;
    }
    // The same sentence as page.interval_words, from the answer's interval.
    const band = document.getElementById("answer-interval");
    if (band) {
      const interval = prediction.interval;
      band.textContent = interval ? intervalWords(interval) : "";
      band.hidden = !interval;
    }
    const warning = document.getElementById("answer-warning");
    warning.textContent = prediction.warning || "";
    warning.hidden = !prediction.warning;
    answer.hidden = false;
    showWhy(prediction);
  }

  function movePoint(x, shown) {
    const d = chart.dataset;
    const [xLow, xHigh, yLow, yHigh] = [d.xLow, d.xHigh, d.yLow, d.yHigh].map(Number);
    const [left, right, top, bottom] = [d.left, d.right, d.top, d.bottom].map(Number);
    const cx = scale(x, xLow, xHigh, left, right);
    const cy = scale(shown, yLow, yHigh, bottom, top);
    const rightHalf = cx > (left + right) / 2;
    point.setAttribute("cx", cx);
    point.setAttribute("cy", cy);
    label.setAttribute("x", rightHalf ? cx - 10 : cx + 10);
    label.setAttribute("y", cy < top + 20 ? cy + 20 : cy - 10);
    label.setAttribute("text-anchor", rightHalf ? "end" : "start");
    label.textContent = `${x}${d.xUnit} → ${shown.toFixed(1)}${d.yUnit}`;
    const onChart = x >= xLow && x <= xHigh && shown >= yLow && shown <= yHigh;
    marker.classList.toggle("off-chart", !onChart);
    marker.classList.remove("is-empty");
  }

  async function predict() {
    const request = ++latest;
    const body = requestBody();
    let response, answerBody;
    try {
      response = await fetch(form.dataset.predictUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...authorization() },
        body,
      });
      answerBody = await response.json();
    } catch (failure) {
      if (request === latest) showError(`Could not get an answer from the service: ${failure.message}`);
      return;
    }
    if (request !== latest) return;
    if (tokenField) tokenField.removeAttribute("aria-invalid");
    if (response.status === 401 && tokenField) {
      sessionStorage.removeItem(TOKEN_KEY);
      tokenField.setAttribute("aria-invalid", "true");
      tokenField.focus();
    }
    if (!response.ok) {
      showError(answerBody.error || `The service answered HTTP ${response.status}.`);
      return;
    }
    const prediction = answerBody.prediction;
    showAnswer(prediction);
    if (chart) {
      const shown = prediction.height_inches ?? prediction[document.getElementById("answer-value").dataset.field];
      movePoint(JSON.parse(body)[fields[0].dataset.feature], shown);
    }
    // Reloading or sharing the address shows the same answer, rendered by the server.
    const query = fields.map((f) => `${f.name}=${encodeURIComponent(f.value.trim())}`).join("&");
    history.replaceState(null, "", `?${query}`);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    predict();
  });
  // A shared or reloaded address was refused for want of the token: ask again with the tab's.
  if (form.hasAttribute("data-token-refused") && tokenField && tokenField.value) predict();
})();
