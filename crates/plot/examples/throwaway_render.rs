fn main() {
    let p = std::env::args().nth(1).unwrap();
    gradscope_plot::render_all(std::path::Path::new(&p)).unwrap();
}
