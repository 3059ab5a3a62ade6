/* Carina PACS web application: the little JavaScript the pages need beside HTMX.
 *
 * - Upload: files, folders (drag and drop, or the folder picker) and ZIP archives go to the
 *   REST API (POST /api/uploads/), one upload per file, three at a time, each with its own
 *   progress bar and the outcome of every object in it; uploads the server runs in the
 *   background are followed on their status URL. Without JavaScript the form posts normally.
 * - The account menu closes with Escape or a click elsewhere.
 */
(function () {
  "use strict";

  var PARALLEL = 3;
  var OUTCOME_LABELS = {
    stored: "Stored",
    already_present: "Already present",
    replaced: "Replaced",
    rejected: "Rejected",
    skipped: "Skipped",
  };

  function csrfToken(form) {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function element(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function formatSize(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
    if (bytes < 1024 * 1024 * 1024) return (bytes / 1024 / 1024).toFixed(1) + " MB";
    return (bytes / 1024 / 1024 / 1024).toFixed(2) + " GB";
  }

  /* Every file under a dropped entry (a file, or a folder read recursively). */
  function filesOfEntry(entry, done) {
    if (entry.isFile) {
      entry.file(function (file) {
        done([{ file: file, name: entry.fullPath.replace(/^\//, "") }]);
      }, function () { done([]); });
      return;
    }
    if (!entry.isDirectory) { done([]); return; }
    var reader = entry.createReader();
    var entries = [];
    (function readBatch() {
      reader.readEntries(function (batch) {
        if (batch.length) { entries = entries.concat(Array.prototype.slice.call(batch)); readBatch(); return; }
        var found = [];
        var pending = entries.length;
        if (!pending) { done(found); return; }
        entries.forEach(function (child) {
          filesOfEntry(child, function (files) {
            found = found.concat(files);
            pending -= 1;
            if (!pending) done(found);
          });
        });
      }, function () { done(entries); });
    })();
  }

  function initUpload(form) {
    var api = form.getAttribute("data-api");
    var studyUrl = form.getAttribute("data-study-url");
    var zone = form.querySelector("#dropzone");
    var submit = form.querySelector("#upload-submit");
    var section = document.getElementById("upload-progress");
    var list = document.getElementById("upload-list");
    var summary = document.getElementById("upload-summary");
    var queue = [];
    var active = 0;
    var files = 0;
    var finished = 0;
    var counts = {};
    var studies = new Map();

    if (submit) submit.hidden = true;

    function updateSummary() {
      var parts = Object.keys(counts).map(function (key) {
        return counts[key] + " " + (OUTCOME_LABELS[key] || key).toLowerCase();
      });
      summary.textContent = "";
      var line = element("p", {}, finished + " of " + files + " file" + (files === 1 ? "" : "s") +
        " done" + (parts.length ? ": " + parts.join(", ") + "." : "."));
      line.id = "upload-counts";
      summary.appendChild(line);
      if (studies.size) {
        var heading = element("p", {}, "Studies:");
        var ul = element("ul", { id: "upload-studies" });
        studies.forEach(function (study, uid) {
          var li = element("li");
          var a = element("a", { href: studyUrl.replace("STUDY_UID", encodeURIComponent(uid)) },
            "Study of patient " + (study.patientId || "(no ID)"));
          li.appendChild(a);
          li.appendChild(document.createTextNode(" (" + study.objects + " object" + (study.objects === 1 ? "" : "s") + ")"));
          ul.appendChild(li);
        });
        summary.appendChild(heading);
        summary.appendChild(ul);
      }
    }

    function showResults(item, data) {
      var results = (data && data.results) || [];
      item.outcome.textContent = "";
      results.forEach(function (r) {
        counts[r.status] = (counts[r.status] || 0) + 1;
        if (r.study_instance_uid) {
          var study = studies.get(r.study_instance_uid) || { patientId: r.patient_id, objects: 0 };
          study.objects += 1;
          studies.set(r.study_instance_uid, study);
        }
      });
      if (data && data.error) {
        item.outcome.appendChild(element("p", { "class": "field-error" }, data.error));
      }
      if (results.length === 1 && results[0].name.indexOf("!") < 0) {
        var r = results[0];
        item.li.setAttribute("data-outcome", r.status);
        item.outcome.appendChild(element("span", { "class": "badge " + r.status }, OUTCOME_LABELS[r.status] || r.status));
        if (r.reason) item.outcome.appendChild(document.createTextNode(" " + r.reason));
        return;
      }
      var tally = {};
      results.forEach(function (r) { tally[r.status] = (tally[r.status] || 0) + 1; });
      item.li.setAttribute("data-outcome", Object.keys(tally).join(" ") || "empty");
      var text = results.length + " object" + (results.length === 1 ? "" : "s") + ": " +
        Object.keys(tally).map(function (k) { return tally[k] + " " + (OUTCOME_LABELS[k] || k).toLowerCase(); }).join(", ");
      item.outcome.appendChild(element("span", {}, results.length ? text : "No object in this archive."));
      if (!results.length) return;
      var details = element("details");
      details.appendChild(element("summary", {}, "Each object"));
      var ul = element("ul");
      results.forEach(function (r) {
        var li = element("li");
        li.appendChild(element("span", { "class": "member-name" }, r.name.split("!").pop() + " "));
        li.appendChild(element("span", { "class": "badge " + r.status }, OUTCOME_LABELS[r.status] || r.status));
        if (r.reason) li.appendChild(document.createTextNode(" " + r.reason));
        ul.appendChild(li);
      });
      details.appendChild(ul);
      item.outcome.appendChild(details);
      if (tally.rejected) details.open = true;
    }

    function done(item) {
      active -= 1;
      finished += 1;
      item.li.setAttribute("data-state", "done");
      updateSummary();
      pump();
    }

    function follow(item, url) {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          item.progress.value = Math.round((data.progress || 0) * 100);
          item.outcome.textContent = "Storing in the background: " + data.done + " of " + data.total + " objects…";
          if (data.status === "done" || data.status === "failed") {
            item.progress.value = 100;
            showResults(item, data);
            done(item);
          } else {
            setTimeout(function () { follow(item, url); }, 1000);
          }
        })
        .catch(function () {
          item.outcome.textContent = "Lost track of this upload; see Recent uploads after a reload.";
          done(item);
        });
    }

    function start(item) {
      active += 1;
      item.li.setAttribute("data-state", "sending");
      item.outcome.textContent = "Sending…";
      var body = new FormData();
      body.append("files", item.file, item.name.split("/").pop());
      var xhr = new XMLHttpRequest();
      xhr.open("POST", api);
      xhr.setRequestHeader("X-CSRFToken", csrfToken(form));
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) item.progress.value = Math.round((event.loaded / event.total) * 95);
      });
      xhr.upload.addEventListener("load", function () { item.outcome.textContent = "Checking and storing…"; });
      xhr.addEventListener("load", function () {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
        if (xhr.status === 202 && data && data.url) { follow(item, data.url); return; }
        item.progress.value = 100;
        if (data && data.results) {
          showResults(item, data);
        } else {
          item.li.setAttribute("data-outcome", "error");
          item.outcome.textContent = "";
          item.outcome.appendChild(element("span", { "class": "badge rejected" }, "Failed"));
          item.outcome.appendChild(document.createTextNode(" " + ((data && data.detail) || ("The server answered " + xhr.status + "."))));
        }
        done(item);
      });
      xhr.addEventListener("error", function () {
        item.li.setAttribute("data-outcome", "error");
        item.outcome.textContent = "The connection to the server failed; nothing of this file is known to be stored.";
        done(item);
      });
      xhr.send(body);
    }

    function pump() {
      while (active < PARALLEL && queue.length) start(queue.shift());
    }

    function enqueue(entries) {
      if (!entries.length) return;
      section.hidden = false;
      entries.forEach(function (entry) {
        var li = element("li", { "class": "file-item", "data-state": "queued" });
        li.appendChild(element("span", { "class": "file-name" }, entry.name));
        li.appendChild(element("span", { "class": "muted small" }, formatSize(entry.file.size)));
        var progress = element("progress", { max: "100", value: "0", "aria-label": "Upload of " + entry.name });
        li.appendChild(progress);
        var outcome = element("div", { "class": "outcome" }, "Waiting…");
        li.appendChild(outcome);
        list.appendChild(li);
        queue.push({ file: entry.file, name: entry.name, li: li, progress: progress, outcome: outcome });
        files += 1;
      });
      updateSummary();
      pump();
    }

    form.querySelectorAll("input[type=file]").forEach(function (input) {
      input.addEventListener("change", function () {
        var chosen = Array.prototype.map.call(input.files, function (file) {
          return { file: file, name: file.webkitRelativePath || file.name };
        });
        enqueue(chosen);
        input.value = "";
      });
    });

    form.addEventListener("submit", function (event) { event.preventDefault(); });

    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (event) {
        event.preventDefault();
        zone.classList.add("dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (type) {
      zone.addEventListener(type, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      var items = event.dataTransfer.items;
      var entries = [];
      if (items && items.length && items[0].webkitGetAsEntry) {
        entries = Array.prototype.map.call(items, function (i) { return i.webkitGetAsEntry(); })
          .filter(function (e) { return e; });
      }
      if (entries.length) {
        var pending = entries.length;
        var found = [];
        entries.forEach(function (entry) {
          filesOfEntry(entry, function (files) {
            found = found.concat(files);
            pending -= 1;
            if (!pending) enqueue(found);
          });
        });
        return;
      }
      enqueue(Array.prototype.map.call(event.dataTransfer.files, function (file) {
        return { file: file, name: file.name };
      }));
    });
  }

  function initMenus() {
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") return;
      document.querySelectorAll("details.usermenu[open]").forEach(function (menu) {
        menu.open = false;
        menu.querySelector("summary").focus();
      });
    });
    document.addEventListener("click", function (event) {
      document.querySelectorAll("details.usermenu[open]").forEach(function (menu) {
        if (!menu.contains(event.target)) menu.open = false;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload-form");
    if (form) initUpload(form);
    initMenus();
  });
})();
