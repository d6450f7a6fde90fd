//! Network names: the architectures this build can run, the paper's networks they reproduce or
//! stand in for, and the kinds of quantizable layer.
crate::names! {
    /// `model.arch`: an architecture the models crate builds (`mpq_models::Arch::new`, one
    /// constructor per name, matched exhaustively).
    pub enum ArchName ("architecture") {
        /// Embedded: residual, 3 stages of 2 BasicBlocks, trained by the project.
        ResnetTiny = "resnet-tiny",
        /// Embedded: inverted residual blocks with depthwise convolutions.
        MobilenetTiny = "mobilenet-tiny",
        /// torchvision's resnet18.
        Resnet18 = "resnet18",
        /// torchvision's resnet50.
        Resnet50 = "resnet50",
        /// torchvision's mobilenet_v2.
        MobilenetV2 = "mobilenet_v2",
        /// timm's legacy_xception.
        Xception = "xception",
    }
}

crate::names! {
    /// `experiment.paper_model`: a network of the paper, whose figures and claims a run
    /// reproduces (or stands in for, when `model.arch` is another network).
    pub enum PaperModel ("paper model") {
        ResNet18 = "ResNet18",
        ResNet50 = "ResNet50",
        MobileNetV2 = "MobileNetV2",
        Xception = "Xception",
    }
}

crate::names! {
    /// The kind of a quantizable layer (the `layers` table's `kind`).
    pub enum LayerKind ("layer kind") {
        /// Dense 2-D convolution (groups = 1).
        Conv = "conv",
        /// Depthwise 2-D convolution (groups = channels, one filter per channel).
        Depthwise = "depthwise",
        /// Fully connected.
        Linear = "linear",
    }
}

impl ArchName {
    /// The networks the project defines and trains itself (`mpq train`).
    pub const fn is_embedded(self) -> bool {
        self.paper_model().is_none()
    }

    /// The paper's network this architecture is, `None` for the embedded ones.
    pub const fn paper_model(self) -> Option<PaperModel> {
        match self {
            ArchName::ResnetTiny | ArchName::MobilenetTiny => None,
            ArchName::Resnet18 => Some(PaperModel::ResNet18),
            ArchName::Resnet50 => Some(PaperModel::ResNet50),
            ArchName::MobilenetV2 => Some(PaperModel::MobileNetV2),
            ArchName::Xception => Some(PaperModel::Xception),
        }
    }

    /// The embedded architectures, in declaration order.
    pub fn embedded() -> impl Iterator<Item = ArchName> {
        ArchName::ALL.iter().copied().filter(|a| a.is_embedded())
    }
}
