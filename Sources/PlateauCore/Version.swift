/// The package version written into every result record.
public enum PlateauVersion {
    public static let string = "0.1.0"
}
