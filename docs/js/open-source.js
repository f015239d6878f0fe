// The tutorial shows a cell's step code next to its equations: open those "Source code" boxes from the start
// (mkdocstrings renders them closed). Only code wrapped in <div class="source-open"> is opened.
document.querySelectorAll(".source-open details").forEach((box) => { box.open = true; });
