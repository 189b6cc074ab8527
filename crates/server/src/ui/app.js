// Copy buttons beside pull commands, and the region list switching on change; the only script
// the UI has (pages work without it: the region form has its own button).
document.documentElement.classList.add("js");
document.addEventListener("change", (e) => {
  if (e.target.matches("form.region select")) e.target.form.submit();
});
document.addEventListener("click", (e) => {
  const btn = e.target.closest(".copy-btn");
  if (!btn) return;
  const code = btn.parentElement.querySelector("code");
  if (!code) return;
  const done = () => {
    btn.textContent = "Copied";
    setTimeout(() => { btn.textContent = "Copy"; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(code.textContent).then(done);
    return;
  }
  // Plain HTTP on another host than localhost has no clipboard API: copy the selection.
  const range = document.createRange();
  range.selectNodeContents(code);
  const sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
  if (document.execCommand("copy")) done();
});
